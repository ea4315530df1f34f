"""What every baseline agent shares: spaces, device, SB3 ``predict`` batching, data loading, checkpoints."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from gymnasium import spaces

from ..data_loading import Episode, load_episodes
from ..spaces import (
    MULTI_CATEGORICAL_SPACES,
    DictKey,
    are_categories,
    check_action_space,
    check_discrete_actions,
    check_flat_box,
    check_observation_space,
    dict_keys,
    discrete_rows,
    flatten_observation,
    flatten_space,
    resolve_device,
)
from .checkpoint import read_checkpoint, write_checkpoint

AgentT = TypeVar("AgentT", bound="BaselineAgent")
BuiltT = TypeVar("BuiltT")


def one_hot_categories(values: torch.Tensor, n: int) -> torch.Tensor:
    """Categories ``0 .. n - 1`` held as floats, (R, 1) or (R,), as (R, n) one-hot rows in their dtype."""
    categories = values.reshape(-1).round().long()  # (R,)
    return torch.nn.functional.one_hot(categories, n).to(values.dtype)  # (R, n)


def seeded_init(seed: int, build: Callable[[], BuiltT]) -> BuiltT:
    """Run ``build()`` with torch's global generator seeded, leaving the caller's generator state untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)  # torch.manual_seed would also reseed every CUDA generator
        return build()


class BaselineAgent:
    """Spaces, device, batching of ``predict``, data loading and the checkpoint API common to the baselines.

    A subclass names its ``kind``, describes itself with :meth:`_state` (see
    :mod:`tt_agents.baselines.checkpoint`) and is rebuilt from that state by :meth:`_from_state`.
    """

    kind = "BaselineAgent"

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, device: str | torch.device) -> None:
        self.observation_space, self.action_space = observation_space, action_space
        input_space, observation_keys = self._input_space(observation_space)
        self.input_space = input_space
        """The flat Box the networks read."""
        self.observation_keys = observation_keys
        """For a Dict observation space used whole, its keys: the entries are concatenated in this order (else
        None)."""
        self.observation_dim = check_flat_box(self.input_space, "observation_space")
        if isinstance(action_space, MULTI_CATEGORICAL_SPACES):
            raise TypeError(
                f"action_space {action_space!r}: the baselines take a flat Box or a Discrete (TTAgent plans "
                "MultiDiscrete and MultiBinary actions, a token per entry); map its combinations onto one Discrete "
                "(an ActionWrapper)"
            )
        self.action_dim = check_action_space(action_space)
        if not (self.discrete_actions or np.isfinite(action_space.low).all() and np.isfinite(action_space.high).all()):
            raise ValueError(
                f"action_space must have finite bounds (the policy is squashed into them), got {action_space}"
            )
        self.device = resolve_device(device)
        self.history: list[dict[str, float]] = []
        """One entry of losses per training step, over all ``fit`` calls."""

    @property
    def discrete_actions(self) -> bool:
        """Whether the action space is ``Discrete`` (actions are ints, one per step)."""
        return isinstance(self.action_space, spaces.Discrete)

    # ------------------------------------------------------------------ observations and actions

    @staticmethod
    def _input_space(observation_space: spaces.Space) -> tuple[spaces.Space, tuple[DictKey, ...] | None]:
        """The space the networks read and, for a Dict space, its keys in concatenation order. A Discrete(n)
        space is read one-hot: a Box of n entries in [0, 1]."""
        if isinstance(observation_space, spaces.Dict):
            return flatten_space(observation_space), dict_keys(observation_space)
        if isinstance(observation_space, spaces.Discrete):
            check_observation_space(observation_space)  # starts at 0
            return spaces.Box(0.0, 1.0, (int(observation_space.n),), np.float32), None
        return observation_space, None

    @property
    def discrete_observations(self) -> bool:
        """Whether the observation space is ``Discrete`` (read one-hot)."""
        return isinstance(self.observation_space, spaces.Discrete)

    def _episodes(self, dataset: Any) -> list[Episode]:
        episodes = load_episodes(dataset, observation_key=self.observation_keys)
        if not self.discrete_observations:
            return episodes
        n = int(self.observation_space.n)
        one_hot = []
        for index, episode in enumerate(episodes):
            final = episode.final_observation
            if not episode.discrete_observations or not are_categories(
                np.concatenate([episode.observations[:, 0], [] if final is None else final]), n
            ):
                raise ValueError(
                    f"episode {index}: the observations must be the categories 0 .. {n - 1} of "
                    f"{self.observation_space!r}, as integers of shape (T,) or (T + 1,)"
                )
            one_hot.append(
                episode.replaced(
                    observations=np.eye(n, dtype=np.float32)[episode.observations[:, 0].astype(np.int64)],
                    final_observation=None if final is None else np.eye(n, dtype=np.float32)[int(final[0])],
                )
            )
        return one_hot

    def _flat_observations(self, observation: Any) -> Any:
        """The observation as the rows the networks read (before the shape check): a Dict's entries concatenated,
        a Discrete space's categories one-hot."""
        if self.observation_keys is not None:
            return flatten_observation(observation, self.observation_keys, self.observation_dim)
        if self.discrete_observations:
            rows, single = discrete_rows(observation, self.observation_space)  # (B, 1)
            one_hot = np.eye(self.observation_dim, dtype=np.float32)[rows[:, 0].astype(np.int64)]  # (B, n)
            return one_hot[0] if single else one_hot
        return observation

    def network_observations(self, observations: torch.Tensor) -> torch.Tensor:
        """Observation rows as the environment gives them, (R, O) on any device, as the networks read them (R, O'):
        a Discrete space's categories (R, 1) one-hot, anything else unchanged."""
        if not self.discrete_observations:
            return observations
        return one_hot_categories(observations, self.observation_dim)  # (R, n)

    def _observations(self, observation: Any) -> tuple[torch.Tensor, bool]:
        """(B, O) float32 tensor on the device and whether the input was a single observation."""
        array = np.asarray(self._flat_observations(observation), dtype=np.float32)
        single = array.ndim == 1
        if single:
            array = array[None]
        if array.ndim != 2 or array.shape[1] != self.observation_dim:
            raise ValueError(
                f"observation must have shape ({self.observation_dim},) or (n_envs, {self.observation_dim}), "
                f"got {np.shape(observation)}"
            )
        return torch.as_tensor(array, device=self.device), single

    def _training_actions(self, actions: np.ndarray) -> np.ndarray:
        """The data's actions (N, A) clipped to a Box space, or checked to be a Discrete space's categories."""
        if not self.discrete_actions:
            return np.clip(actions, self.action_space.low, self.action_space.high)
        check_discrete_actions(actions, self.action_space)
        return actions

    def _finish_actions(self, actions: torch.Tensor, single: bool) -> np.ndarray:
        """(B, A) Box actions, or (B,) Discrete ones, as numpy in the action space's dtype (and bounds); one
        action for a single observation."""
        out = actions.detach().cpu().numpy().astype(self.action_space.dtype)
        if not self.discrete_actions:
            out = np.clip(out, self.action_space.low, self.action_space.high)
        return out[0] if single else out

    # ------------------------------------------------------------------ checkpoints

    def _state(self) -> dict[str, Any]:
        """Everything needed to rebuild the agent (see :mod:`tt_agents.baselines.checkpoint`)."""
        raise NotImplementedError

    @classmethod
    def _from_state(cls: type[AgentT], state: Mapping[str, Any], device: str | torch.device) -> AgentT:
        """The agent described by ``state`` (the inverse of :meth:`_state`)."""
        raise NotImplementedError

    def save_pretrained(self, path: str | os.PathLike[str]) -> Path:
        """Write the agent into folder ``path``: ``config.json`` (kind, spaces, settings, package version) and
        ``model.safetensors`` (weights and optimizer state); returns ``path``.

        The files are staged inside ``path`` and committed through a journal, so an interrupted save never
        leaves a mix of old and new files; other files already in ``path`` are kept.
        """
        return write_checkpoint(path, self._state())

    @classmethod
    def from_pretrained(cls: type[AgentT], path: str | os.PathLike[str], device: str | torch.device = "auto") -> AgentT:
        """The agent saved at ``path`` by :meth:`save_pretrained` (or a legacy single-file checkpoint); its
        predictions equal the saved agent's.

        Raises:
            FileNotFoundError: nothing at ``path``, or a folder missing one of its files.
            ValueError: a corrupt file, a checkpoint of another kind of agent, or weights that do not match.
        """
        state = read_checkpoint(path, cls.kind)
        try:
            return cls._from_state(state, device)
        except (KeyError, RuntimeError, TypeError, ValueError) as exc:
            raise ValueError(f"{path} does not hold a valid {cls.kind}: {type(exc).__name__}: {exc}") from exc

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Alias of :meth:`save_pretrained` (``path`` is a folder)."""
        return self.save_pretrained(path)

    @classmethod
    def load(cls: type[AgentT], path: str | os.PathLike[str], device: str | torch.device = "auto") -> AgentT:
        """Alias of :meth:`from_pretrained` (a checkpoint folder, or a legacy single file)."""
        return cls.from_pretrained(path, device)
