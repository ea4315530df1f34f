"""Offline-RL baselines on the same episodes as the Trajectory Transformer: behaviour cloning and IQL.

Both agents read their data with :func:`tt_agents.data_loading.load_episodes` (a Minari id, a ``minari.MinariDataset``
or in-memory episodes), act through the Stable-Baselines3 ``predict`` contract (so ``evaluate_policy`` and
:func:`tt_agents.evaluate` work on them), are reproducible on CPU for a seed, and save to a single file.

- :class:`BCAgent`: an MLP policy (2x256 ReLU) whose output is tanh-squashed to the action bounds, trained
  with Adam on the mean squared error to the dataset's actions (in the environment's units).
- :class:`GoalBCAgent`: :class:`BCAgent` on ``concat(observation, goal)`` for goal envs (Dict observations),
  trained with hindsight goals (each episode's final ``achieved_goal``), acting on ``desired_goal``.
- :class:`IQLAgent`: Implicit Q-Learning (Kostrikov, Nair & Levine, 2021) with the paper's locomotion
  hyperparameters (:class:`IQLConfig`). :meth:`IQLAgent.q_function` gives the planner's ``q`` scorer a
  :data:`tt_agents.planner.QFunction` in the original reward scale.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from tt_agents.data_loading import Episode, load_episodes
from tt_agents.spaces import (
    dict_keys,
    flatten_observation,
    flatten_space,
    resolve_device,
    space_from_dict,
    space_to_dict,
)

_FORMAT = "tt_agents.baselines/2"  # 2: spaces stored as JSON-friendly dicts (Dict spaces too)
_FORMAT_V1 = "tt_agents.baselines/1"  # still read


# ---------------------------------------------------------------------------------------------- data


def _box_dims(observation_space: spaces.Space, action_space: spaces.Space) -> tuple[int, int]:
    """(observation_dim, action_dim); flat Box spaces only, and the action bounds must be finite."""
    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
        raise ValueError(f"observation_space must be a flat (1-D) Box, got {observation_space}")
    if not isinstance(action_space, spaces.Box) or len(action_space.shape) != 1:
        raise ValueError(f"action_space must be a flat (1-D) Box (continuous actions), got {action_space}")
    if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
        raise ValueError(f"action_space must have finite bounds (the policy is squashed into them), got {action_space}")
    return int(observation_space.shape[0]), int(action_space.shape[0])


@dataclass
class Transitions:
    """Per-step arrays of a set of episodes (what the baselines train on)."""

    observations: np.ndarray
    """(N, O) float32."""
    actions: np.ndarray
    """(N, A) float32."""
    rewards: np.ndarray
    """(N,) float32, raw environment rewards."""
    next_observations: np.ndarray
    """(N, O) float32: ``observations[t + 1]`` inside an episode, the episode's ``final_observation`` at its last
    step (a copy of the observation at a true terminal without one; it is masked out there)."""
    terminals: np.ndarray
    """(N,) float32, 1 only at true terminals (not at time-limit truncations)."""
    episode_returns: np.ndarray
    """(E,) float64 undiscounted return of every episode (for reward normalisation)."""


def transitions_from_episodes(
    episodes: Sequence[Episode], observation_dim: int, action_dim: int, *, need_next: bool
) -> Transitions:
    """Join episodes into :class:`Transitions`, checking their sizes against the agent's spaces.

    Args:
        episodes: validated episodes (:func:`tt_agents.data_loading.load_episodes`).
        observation_dim: the agent's observation size.
        action_dim: the agent's action size.
        need_next: drop the last step of a truncated episode that has no ``final_observation`` (its next
            observation is unknown, so it cannot be bootstrapped). Behaviour cloning keeps every step.

    Raises:
        ValueError: no episodes, or an episode whose observation/action size differs from the spaces.
    """
    if len(episodes) == 0:
        raise ValueError("the dataset has no episodes")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "act", "rew", "next", "term")}
    for index, episode in enumerate(episodes):
        obs_dim, act_dim = episode.observations.shape[1], episode.actions.shape[1]
        if obs_dim != observation_dim or act_dim != action_dim:
            raise ValueError(
                f"episode {index} has observation size {obs_dim} and action size {act_dim}, but the agent's spaces "
                f"have {observation_dim} and {action_dim}: the dataset does not match the environment"
            )
        observations, length = episode.observations, len(episode)
        if episode.final_observation is not None:
            following = np.concatenate([observations[1:], episode.final_observation[None]])  # (T, O)
            keep = length
        elif episode.terminated:
            following = np.concatenate([observations[1:], observations[-1:]])  # terminal: masked out
            keep = length
        else:
            following = np.concatenate([observations[1:], observations[-1:]])
            keep = length - 1 if need_next else length
        terminals = np.zeros(length, dtype=np.float32)
        terminals[-1] = float(episode.terminated)
        parts["obs"].append(observations[:keep])
        parts["act"].append(episode.actions[:keep])
        parts["rew"].append(episode.rewards[:keep])
        parts["next"].append(following[:keep])
        parts["term"].append(terminals[:keep])
    transitions = Transitions(
        observations=np.concatenate(parts["obs"]).astype(np.float32),
        actions=np.concatenate(parts["act"]).astype(np.float32),
        rewards=np.concatenate(parts["rew"]).astype(np.float32),
        next_observations=np.concatenate(parts["next"]).astype(np.float32),
        terminals=np.concatenate(parts["term"]),
        episode_returns=np.array([episode.rewards.sum(dtype=np.float64) for episode in episodes]),
    )
    if len(transitions.rewards) == 0:
        raise ValueError("the dataset has no usable transitions")
    return transitions


# ---------------------------------------------------------------------------------------------- networks


def mlp(in_dim: int, out_dim: int, hidden: Sequence[int]) -> nn.Sequential:
    """Linear layers with ReLU between them: ``in_dim -> hidden... -> out_dim``."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class Normalizer(nn.Module):
    """``(x - mean) / std`` with buffers (identity until :meth:`fit` is called)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, x: np.ndarray) -> None:
        """Set the statistics from data ``x`` (N, dim); a constant column keeps std 1."""
        std = x.std(0)
        self.mean.copy_(torch.as_tensor(x.mean(0)))
        self.std.copy_(torch.as_tensor(np.where(std < 1e-6, 1.0, std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ActionScaler(nn.Module):
    """Maps the action box to ``[-1, 1]`` (``normalize``) and back (``unnormalize``)."""

    def __init__(self, low: np.ndarray, high: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32))

    def normalize(self, action: torch.Tensor) -> torch.Tensor:
        return (2.0 * (action - self.low) / (self.high - self.low) - 1.0).clamp(-1.0, 1.0)

    def unnormalize(self, action: torch.Tensor) -> torch.Tensor:
        return self.low + 0.5 * (action.clamp(-1.0, 1.0) + 1.0) * (self.high - self.low)


class SquashedPolicy(nn.Module):
    """Deterministic policy: normalizer → MLP → tanh → rescaled to the action bounds."""

    def __init__(self, observation_dim: int, low: np.ndarray, high: np.ndarray, hidden: Sequence[int]) -> None:
        super().__init__()
        self.normalizer = Normalizer(observation_dim)
        self.net = mlp(observation_dim, len(low), hidden)
        self.scaler = ActionScaler(low, high)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """(B, O) → (B, A) actions inside the bounds."""
        return self.scaler.unnormalize(torch.tanh(self.net(self.normalizer(observations))))


class TwinQ(nn.Module):
    """Two independent Q networks on ``[normalized observation, action]``."""

    def __init__(self, observation_dim: int, action_dim: int, hidden: Sequence[int], normalizer: Normalizer) -> None:
        super().__init__()
        self.normalizer = normalizer
        self.q1 = mlp(observation_dim + action_dim, 1, hidden)
        self.q2 = mlp(observation_dim + action_dim, 1, hidden)

    def forward(self, observations: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, O), (B, A) → two (B,) estimates."""
        x = torch.cat([self.normalizer(observations), actions], dim=-1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


class ValueNetwork(nn.Module):
    """State value ``V(s)``."""

    def __init__(self, observation_dim: int, hidden: Sequence[int], normalizer: Normalizer) -> None:
        super().__init__()
        self.normalizer = normalizer
        self.net = mlp(observation_dim, 1, hidden)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """(B, O) → (B,)."""
        return self.net(self.normalizer(observations)).squeeze(-1)


class GaussianActor(nn.Module):
    """IQL's policy: Gaussian over normalized actions with mean ``tanh(MLP(s))`` and a state-independent
    log-std (clipped to [-5, 2]), as in the authors' locomotion configuration. Acting uses the mean."""

    def __init__(self, observation_dim: int, action_dim: int, hidden: Sequence[int], normalizer: Normalizer) -> None:
        super().__init__()
        self.normalizer = normalizer
        self.net = mlp(observation_dim, action_dim, hidden)
        self.log_std = nn.Parameter(torch.zeros(action_dim))

    def forward(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, O) → mean (B, A) in [-1, 1] and std (A,)."""
        mean = torch.tanh(self.net(self.normalizer(observations)))
        return mean, self.log_std.clamp(-5.0, 2.0).exp()

    def log_prob(self, observations: torch.Tensor, normalized_actions: torch.Tensor) -> torch.Tensor:
        """(B,) log-density of ``normalized_actions`` (B, A)."""
        mean, std = self(observations)
        return torch.distributions.Normal(mean, std).log_prob(normalized_actions).sum(-1)


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """IQL's asymmetric L2 loss ``mean(|expectile - 1(diff < 0)| * diff**2)`` of ``diff = Q - V``."""
    weight = torch.where(diff > 0, expectile, 1.0 - expectile)
    return (weight * diff.square()).mean()


# ---------------------------------------------------------------------------------------------- shared agent code


def _atomic_save(obj: object, path: str | os.PathLike[str]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _load_checkpoint(path: str | os.PathLike[str], kind: str) -> dict[str, Any]:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise ValueError(
            f"{path} is not a readable tt_agents baseline checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(data, dict) or data.get("format") not in (_FORMAT, _FORMAT_V1):
        raise ValueError(f"{path} is not a tt_agents baseline checkpoint (format {_FORMAT!r} or {_FORMAT_V1!r})")
    if data.get("kind") != kind:
        raise ValueError(f"{path} holds a {data.get('kind')}, not a {kind}")
    return _upgrade_v1(data) if data["format"] == _FORMAT_V1 else data


def _upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A format-1 checkpoint (Box spaces as ``low``/``high`` tensors; GoalBCAgent's Dict as
    ``observation_spaces``) in the current form."""

    def box(old: Mapping[str, Any]) -> dict[str, Any]:
        return space_to_dict(spaces.Box(old["low"].numpy(), old["high"].numpy(), dtype=np.dtype(old["dtype"])))

    data = dict(data)
    if "observation_spaces" in data:
        parts = data.pop("observation_spaces")
        data["observation_space"] = {"type": "Dict", "spaces": {k: box(v) for k, v in parts.items()}}
    else:
        data["observation_space"] = box(data["observation_space"])
    data["action_space"] = box(data["action_space"])
    return data


def _progress(show: bool) -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, disable=not show)


def _seeded_init(seed: int, build: Any) -> Any:
    """Run ``build()`` with torch's global generator seeded, leaving the caller's generator state untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


class _BaseAgent:
    """Spaces, device, batching of ``predict`` and the data loading common to the baselines."""

    kind = "base"

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Box, device: str | torch.device) -> None:
        self.observation_keys = dict_keys(observation_space) if isinstance(observation_space, spaces.Dict) else None
        """For a Dict observation space, its keys: the entries are concatenated in this order (else None)."""
        flat = flatten_space(observation_space) if self.observation_keys else observation_space
        self.observation_dim, self.action_dim = _box_dims(flat, action_space)
        self.observation_space, self.action_space = observation_space, action_space
        self.device = resolve_device(device)
        self.history: list[dict[str, float]] = []
        """One entry of losses per training step, over all ``fit`` calls."""

    def _episodes(self, dataset: Any) -> list[Episode]:
        return load_episodes(dataset, observation_key=self.observation_keys)

    def _observations(self, observation: Any) -> tuple[torch.Tensor, bool]:
        """(B, O) float32 tensor on the device and whether the input was a single observation."""
        if self.observation_keys is not None:
            observation = flatten_observation(observation, self.observation_keys)
        array = np.asarray(observation, dtype=np.float32)
        single = array.ndim == 1
        if single:
            array = array[None]
        if array.ndim != 2 or array.shape[1] != self.observation_dim:
            raise ValueError(
                f"observation must have shape ({self.observation_dim},) or (n_envs, {self.observation_dim}), "
                f"got {np.shape(observation)}"
            )
        return torch.as_tensor(array, device=self.device), single

    def _finish_actions(self, actions: torch.Tensor, single: bool) -> np.ndarray:
        out = actions.detach().cpu().numpy().astype(self.action_space.dtype)
        out = np.clip(out, self.action_space.low, self.action_space.high)
        return out[0] if single else out

    @staticmethod
    def _sampler(n: int, batch_size: int, seed: int) -> Any:
        generator = torch.Generator().manual_seed(seed)

        def sample() -> torch.Tensor:
            return torch.randint(n, (batch_size,), generator=generator)

        return sample


# ---------------------------------------------------------------------------------------------- behaviour cloning


class BCAgent(_BaseAgent):
    """Behaviour cloning: a deterministic MLP policy fitted to the dataset's actions.

    The network is ``hidden`` ReLU layers with a tanh output rescaled to the action bounds (so actions are
    always valid); the loss is the mean squared error to the dataset action in the environment's units.
    Observations are standardised with the dataset's mean/std (stored in the model).

    Args:
        observation_space: the environment's flat Box, or a Dict of flat Boxes (entries concatenated in key
            order, like ``gymnasium.wrappers.FlattenObservation``).
        action_space: flat Box action space with finite bounds.
        hidden: hidden layer widths.
        learning_rate: Adam learning rate.
        normalize_observations: standardise observations with the dataset statistics.
        seed: seed of the weight initialisation.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ...
    """

    kind = "BCAgent"

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        hidden: Sequence[int] = (256, 256),
        *,
        learning_rate: float = 3e-4,
        normalize_observations: bool = True,
        seed: int = 0,
        device: str | torch.device = "auto",
    ) -> None:
        super().__init__(observation_space, action_space, device)
        self.hidden = tuple(int(h) for h in hidden)
        self.learning_rate = learning_rate
        self.normalize_observations = normalize_observations
        self.seed = seed
        low, high = action_space.low.astype(np.float32), action_space.high.astype(np.float32)
        self.policy = _seeded_init(
            seed, lambda: SquashedPolicy(self.observation_dim, low, high, self.hidden).to(self.device)
        )
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=learning_rate)
        self._fitted_normalizer = False

    def loss(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the policy's actions (B, A) to ``actions`` for ``observations`` (B, O)."""
        return (self.policy(observations) - actions).square().sum(-1).mean()

    def fit(
        self, dataset: Any, n_steps: int, batch_size: int = 256, seed: int = 0, show_progress: bool = True
    ) -> BCAgent:
        """Train for ``n_steps`` Adam steps on (observation, action) pairs.

        Args:
            dataset: anything :func:`tt_agents.data_loading.load_episodes` reads (Minari id, dataset, episodes).
            n_steps: gradient steps.
            batch_size: pairs per step (sampled uniformly with replacement).
            seed: seed of the batch sampling.
            show_progress: rich progress bar with the loss.

        Returns:
            ``self`` (losses are appended to :attr:`history`).
        """
        if n_steps < 1 or batch_size < 1:
            raise ValueError(f"n_steps and batch_size must be >= 1, got {n_steps} and {batch_size}")
        data = transitions_from_episodes(
            self._episodes(dataset), self.observation_dim, self.action_dim, need_next=False
        )
        if self.normalize_observations and not self._fitted_normalizer:
            self.policy.normalizer.fit(data.observations)
            self._fitted_normalizer = True
        observations = torch.as_tensor(data.observations, device=self.device)
        low, high = self.action_space.low, self.action_space.high
        actions = torch.as_tensor(np.clip(data.actions, low, high), device=self.device)
        sample = self._sampler(len(observations), batch_size, seed)
        self.policy.train()
        losses: list[torch.Tensor] = []
        with _progress(show_progress) as progress:
            task = progress.add_task("BC", total=n_steps)
            for step in range(n_steps):
                index = sample().to(self.device)
                loss = self.loss(observations[index], actions[index])
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                losses.append(loss.detach())
                if (step + 1) % 50 == 0 or step + 1 == n_steps:
                    progress.update(task, completed=step + 1, description=f"BC loss {losses[-1].item():.4f}")
        self.history += [{"loss": value} for value in torch.stack(losses).cpu().tolist()]
        self.policy.eval()
        return self

    @torch.no_grad()
    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """SB3 ``predict``: (O,) → (A,) or (n_envs, O) → (n_envs, A) actions inside the action space.

        ``state`` and ``episode_start`` are accepted for the SB3 contract and ignored (the policy is
        memoryless); the policy is deterministic whatever ``deterministic`` says.
        """
        observations, single = self._observations(observation)
        return self._finish_actions(self.policy(observations), single), None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the agent (spaces, settings, weights, optimizer) to one file, atomically."""
        _atomic_save(
            {
                "format": _FORMAT,
                "kind": self.kind,
                "observation_space": space_to_dict(self.observation_space),
                "action_space": space_to_dict(self.action_space),
                "settings": {
                    "hidden": list(self.hidden),
                    "learning_rate": self.learning_rate,
                    "normalize_observations": self.normalize_observations,
                    "seed": self.seed,
                    "fitted_normalizer": self._fitted_normalizer,
                },
                "policy": self.policy.state_dict(),
                "optimizer": self.optimizer.state_dict(),
            },
            path,
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str | torch.device = "auto") -> BCAgent:
        """An agent from :meth:`save` whose predictions equal the saved one's."""
        data = _load_checkpoint(path, cls.kind)
        settings = dict(data["settings"])
        fitted = settings.pop("fitted_normalizer")
        agent = cls(
            space_from_dict(data["observation_space"]),
            space_from_dict(data["action_space"]),
            settings.pop("hidden"),
            device=device,
            **settings,
        )
        agent.policy.load_state_dict(data["policy"])
        agent.optimizer.load_state_dict(data["optimizer"])
        agent._fitted_normalizer = fitted
        agent.policy.eval()
        return agent


def _goal_input_space(observation_space: spaces.Space) -> spaces.Box:
    """The flat Box of ``concat(observation, desired_goal)`` for a goal-env Dict observation space."""
    if not isinstance(observation_space, spaces.Dict):
        raise ValueError(f"GoalBCAgent needs a Dict observation space (a goal env), got {observation_space}")
    missing = {"observation", "desired_goal"} - set(observation_space.spaces)
    if missing:
        raise ValueError(f"the Dict observation space needs keys 'observation' and 'desired_goal'; missing {missing}")
    parts = [observation_space["observation"], observation_space["desired_goal"]]
    for part in parts:
        if not isinstance(part, spaces.Box) or len(part.shape) != 1:
            raise ValueError(f"'observation' and 'desired_goal' must be flat Boxes, got {part}")
    low = np.concatenate([p.low for p in parts]).astype(np.float32)
    high = np.concatenate([p.high for p in parts]).astype(np.float32)
    return spaces.Box(low=low, high=high, dtype=np.float32)


class GoalBCAgent(BCAgent):
    """Goal-conditioned behaviour cloning: :class:`BCAgent` on ``concat(observation, goal)``.

    Training uses hindsight relabelling, like the Trajectory Transformer's goal mode: every step of an episode
    is paired with the episode's goal, its final ``achieved_goal``. Acting reads Dict observations
    (``observation`` and ``desired_goal``, single or batched) and conditions on ``desired_goal``.

    Args:
        observation_space: a goal-env ``Dict`` with flat Box ``observation`` and ``desired_goal`` entries.
        action_space, hidden, learning_rate, normalize_observations, seed, device: as for :class:`BCAgent`.
    """

    kind = "GoalBCAgent"

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Box,
        hidden: Sequence[int] = (256, 256),
        *,
        learning_rate: float = 3e-4,
        normalize_observations: bool = True,
        seed: int = 0,
        device: str | torch.device = "auto",
    ) -> None:
        flat = _goal_input_space(observation_space)
        super().__init__(
            flat,
            action_space,
            hidden,
            learning_rate=learning_rate,
            normalize_observations=normalize_observations,
            seed=seed,
            device=device,
        )
        self.input_space = self.observation_space
        """The flat Box of the policy input, ``concat(observation, desired_goal)``."""
        self.observation_space = observation_space
        self.goal_dim = int(observation_space["desired_goal"].shape[0])

    def _episodes(self, dataset: Any) -> list[Episode]:
        episodes = load_episodes(dataset, observation_key="observation", goal_key="achieved_goal")
        relabelled = []
        for episode in episodes:
            assert episode.goal is not None
            goals = np.repeat(episode.goal[None], len(episode), axis=0)  # (T, G): the hindsight goal
            inputs = np.concatenate([episode.observations, goals], axis=1)  # (T, O + G)
            relabelled.append(Episode(inputs, episode.actions, episode.rewards, episode.terminated))
        return relabelled

    def _flatten(self, observation: Any) -> np.ndarray:
        """``concat(observation, desired_goal)``: (O + G,) or (n_envs, O + G)."""
        if not isinstance(observation, Mapping) or not {"observation", "desired_goal"} <= set(observation):
            raise TypeError("GoalBCAgent expects a Dict observation with 'observation' and 'desired_goal'")
        obs = np.asarray(observation["observation"], dtype=np.float32)
        goal = np.asarray(observation["desired_goal"], dtype=np.float32)
        if obs.ndim != goal.ndim:
            raise ValueError(f"observation {obs.shape} and desired_goal {goal.shape} must be batched alike")
        return np.concatenate([obs, goal], axis=-1)

    @torch.no_grad()
    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """SB3 ``predict`` on Dict observations (single or batched); conditions on ``desired_goal``."""
        return super().predict(self._flatten(observation), state, episode_start, deterministic)


# ---------------------------------------------------------------------------------------------- IQL


@dataclass
class IQLConfig:
    """IQL hyperparameters; the defaults are the paper's for MuJoCo locomotion (Kostrikov et al., 2021)."""

    hidden: tuple[int, ...] = (256, 256)
    """Hidden widths of the Q, V and policy networks."""
    actor_lr: float = 3e-4
    """Adam learning rate of the policy."""
    critic_lr: float = 3e-4
    """Adam learning rate of the twin Q networks."""
    value_lr: float = 3e-4
    """Adam learning rate of V."""
    batch_size: int = 256
    """Transitions per gradient step."""
    discount: float = 0.99
    """Discount ``gamma`` of the Q target ``r + gamma * (1 - terminal) * V(s')``."""
    expectile: float = 0.7
    """Expectile ``tau`` of the value loss."""
    temperature: float = 3.0
    """Inverse temperature ``beta`` of the advantage weights ``exp(beta * (Q - V))``."""
    max_weight: float = 100.0
    """Advantage weights are clipped at this value."""
    polyak: float = 0.005
    """Target-Q update rate (``target <- (1 - polyak) * target + polyak * Q``)."""
    normalize_rewards: bool = True
    """Scale rewards by ``reward_range / (max episode return - min episode return)`` during training (IQL's
    locomotion normalisation). :meth:`IQLAgent.q_function` and :meth:`IQLAgent.value` undo it."""
    reward_range: float = 1000.0
    """The spread of episode returns after reward normalisation."""
    actor_cosine_schedule: bool = True
    """Decay the policy's learning rate to 0 over each ``fit`` with a cosine (as the authors' code does)."""
    normalize_observations: bool = False
    """Standardise observations with the dataset's mean/std (off in the paper's locomotion setup)."""
    reward_shift: float = 0.0
    """Added to every training reward after scaling (the authors' AntMaze setup: -1, so that reaching the goal
    sooner is worth more). Shifting every reward shifts every Q-value by about the same constant, which leaves
    the ranking of actions, and of the planner's beams, unchanged; :meth:`IQLAgent.q_function` keeps it."""

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        if not 0.0 < self.expectile < 1.0:
            raise ValueError(f"IQLConfig.expectile must be in (0, 1), got {self.expectile}")
        if not 0.0 <= self.discount <= 1.0 or not 0.0 < self.polyak <= 1.0:
            raise ValueError("IQLConfig.discount must be in [0, 1] and polyak in (0, 1]")
        if self.batch_size < 1 or self.reward_range <= 0 or self.max_weight <= 0:
            raise ValueError("IQLConfig.batch_size, reward_range and max_weight must be positive")

    @classmethod
    def antmaze(cls) -> IQLConfig:
        """Kostrikov et al.'s AntMaze settings: expectile 0.9, temperature 10, rewards shifted by -1, no
        reward scaling."""
        return cls(expectile=0.9, temperature=10.0, normalize_rewards=False, reward_shift=-1.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON/torch-safe dict (``hidden`` as a list)."""
        data = asdict(self)
        data["hidden"] = list(self.hidden)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IQLConfig:
        """The inverse of :meth:`to_dict`; unknown keys are an error."""
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown IQLConfig field(s) {sorted(unknown)}")
        return cls(**data)


class IQLQFunction:
    """``q(observations (R, O), actions (R, A)) -> (R,)``: min of the twin target-Q networks, in the original
    reward scale, on the inputs' device (the networks run on the agent's device; tensors are moved as needed).

    It refers to the agent's live networks, so it follows further training.
    """

    def __init__(self, agent: IQLAgent) -> None:
        self.agent = agent

    @torch.no_grad()
    def __call__(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        device = observations.device
        agent = self.agent
        obs = observations.to(agent.device, torch.float32).reshape(-1, agent.observation_dim)
        act = actions.to(agent.device, torch.float32).reshape(-1, agent.action_dim)
        q1, q2 = agent.target_critic(obs, act)
        return (torch.minimum(q1, q2) / agent.reward_scale).to(device)


class IQLAgent(_BaseAgent):
    """Implicit Q-Learning: expectile V, twin Q with a target network, advantage-weighted policy extraction.

    Each gradient step (in the authors' order): V ← expectile regression on ``min(Q_target(s, a))``; the
    policy maximises ``exp(beta * (min Q_target(s, a) - V(s)))`` (clipped) times ``log pi(a | s)``; Q ← MSE to
    ``r + gamma * (1 - terminal) * V(s')``; then Polyak averaging of the target Q. Next observations come from
    ``observations[t + 1]`` and each episode's ``final_observation`` (a truncated episode without one loses its
    last step); only true terminals stop the bootstrap.

    Args:
        observation_space: the environment's flat Box, or a Dict of flat Boxes (entries concatenated in key
            order, like ``gymnasium.wrappers.FlattenObservation``).
        action_space: flat Box action space with finite bounds (the policy works in ``[-1, 1]``).
        config: hyperparameters.
        seed: seed of the weight initialisation and of stochastic actions.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ...
    """

    kind = "IQLAgent"

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        config: IQLConfig | None = None,
        *,
        seed: int = 0,
        device: str | torch.device = "auto",
    ) -> None:
        super().__init__(observation_space, action_space, device)
        self.config = config or IQLConfig()
        self.seed = seed
        o, a, hidden = self.observation_dim, self.action_dim, self.config.hidden
        low, high = action_space.low.astype(np.float32), action_space.high.astype(np.float32)

        def build() -> tuple[nn.Module, ...]:
            normalizer = Normalizer(o)
            critic = TwinQ(o, a, hidden, normalizer)
            value = ValueNetwork(o, hidden, normalizer)
            actor = GaussianActor(o, a, hidden, normalizer)
            return normalizer, critic, value, actor

        self.normalizer, self.critic, self.value_net, self.actor = (
            m.to(self.device) for m in _seeded_init(seed, build)
        )
        self.target_critic = TwinQ(o, a, hidden, self.normalizer).to(self.device)
        self.target_critic.load_state_dict(self.critic.state_dict())
        self.target_critic.requires_grad_(False)
        self.scaler = ActionScaler(low, high).to(self.device)
        self.critic_optimizer = torch.optim.Adam(self._own(self.critic), lr=self.config.critic_lr)
        self.value_optimizer = torch.optim.Adam(self._own(self.value_net), lr=self.config.value_lr)
        self.actor_optimizer = torch.optim.Adam(self._own(self.actor), lr=self.config.actor_lr)
        self.reward_scale = 1.0
        """Factor the training rewards were multiplied by (1 without reward normalisation)."""
        self._fitted_data = False
        self._generator = torch.Generator(device=self.device).manual_seed(seed)

    @staticmethod
    def _own(module: nn.Module) -> list[nn.Parameter]:
        """Trainable parameters of ``module`` (the shared normalizer has buffers only)."""
        return [p for p in module.parameters() if p.requires_grad]

    # ------------------------------------------------------------------ training

    def _prepare(self, data: Transitions) -> None:
        """Reward scale and observation statistics from the first dataset the agent is fitted on."""
        if self._fitted_data:
            return
        if self.config.normalize_rewards:
            spread = float(data.episode_returns.max() - data.episode_returns.min())
            self.reward_scale = self.config.reward_range / spread if spread > 1e-8 else 1.0
        if self.config.normalize_observations:
            self.normalizer.fit(data.observations)
        self._fitted_data = True

    def update(self, batch: Mapping[str, torch.Tensor], actor_lr: float | None = None) -> dict[str, torch.Tensor]:
        """One IQL gradient step on ``batch`` (keys ``observations`` (B, O), ``actions`` (B, A), ``rewards``
        (B,) already scaled by :attr:`reward_scale` and shifted by ``config.reward_shift``,
        ``next_observations`` (B, O), ``terminals`` (B,)).

        Returns:
            Detached scalar losses ``value_loss``, ``actor_loss``, ``critic_loss`` and the mean advantage
            weight ``weight``.
        """
        cfg = self.config
        obs, act = batch["observations"], batch["actions"]
        with torch.no_grad():
            target_q = torch.minimum(*self.target_critic(obs, act))  # (B,)

        value = self.value_net(obs)  # (B,)
        value_loss = expectile_loss(target_q - value, cfg.expectile)
        self.value_optimizer.zero_grad(set_to_none=True)
        value_loss.backward()
        self.value_optimizer.step()

        with torch.no_grad():
            advantage = target_q - self.value_net(obs)  # (B,)
            weight = torch.exp(cfg.temperature * advantage).clamp(max=cfg.max_weight)
        actor_loss = -(weight * self.actor.log_prob(obs, self.scaler.normalize(act))).mean()
        if actor_lr is not None:
            for group in self.actor_optimizer.param_groups:
                group["lr"] = actor_lr
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optimizer.step()

        with torch.no_grad():
            next_value = self.value_net(batch["next_observations"])  # (B,)
            target = batch["rewards"] + cfg.discount * (1.0 - batch["terminals"]) * next_value
        q1, q2 = self.critic(obs, act)
        critic_loss = (q1 - target).square().mean() + (q2 - target).square().mean()
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()

        with torch.no_grad():
            for target_param, param in zip(self.target_critic.parameters(), self.critic.parameters(), strict=True):
                target_param.lerp_(param, cfg.polyak)
        return {
            "value_loss": value_loss.detach(),
            "actor_loss": actor_loss.detach(),
            "critic_loss": critic_loss.detach(),
            "weight": weight.mean(),
        }

    def fit(
        self,
        dataset: Any,
        n_steps: int,
        batch_size: int | None = None,
        seed: int = 0,
        show_progress: bool = True,
        *,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 10_000,
    ) -> IQLAgent:
        """Train for ``n_steps`` IQL steps (the paper: 1M).

        Args:
            dataset: anything :func:`tt_agents.data_loading.load_episodes` reads (Minari id, dataset, episodes).
            n_steps: gradient steps.
            batch_size: transitions per step (default ``config.batch_size``).
            seed: seed of the batch sampling.
            show_progress: rich progress bar with the losses.
            checkpoint: a file where the run is saved every ``checkpoint_every`` steps (atomically); a later
                ``fit`` with the same file, ``n_steps``, ``batch_size`` and ``seed`` continues from it and
                ends with the same networks as an uninterrupted run on CPU.
            checkpoint_every: steps between checkpoints.

        Returns:
            ``self`` (losses of this call are appended to :attr:`history`). The reward scale and observation
            statistics are set by the first ``fit`` and kept afterwards.
        """
        batch_size = batch_size or self.config.batch_size
        if n_steps < 1 or batch_size < 1:
            raise ValueError(f"n_steps and batch_size must be >= 1, got {n_steps} and {batch_size}")
        data = transitions_from_episodes(self._episodes(dataset), self.observation_dim, self.action_dim, need_next=True)
        self._prepare(data)
        tensors = {
            "observations": data.observations,
            "actions": np.clip(data.actions, self.action_space.low, self.action_space.high),
            "rewards": data.rewards * np.float32(self.reward_scale) + np.float32(self.config.reward_shift),
            "next_observations": data.next_observations,
            "terminals": data.terminals,
        }
        tensors = {k: torch.as_tensor(v, dtype=torch.float32, device=self.device) for k, v in tensors.items()}
        generator = torch.Generator().manual_seed(seed)
        run = {"n_steps": n_steps, "batch_size": batch_size, "seed": seed}
        start = self._resume(checkpoint, run, generator)
        history: list[dict[str, torch.Tensor]] = []
        for module in (self.critic, self.value_net, self.actor):
            module.train()
        with _progress(show_progress) as progress:
            task = progress.add_task("IQL", total=n_steps, completed=start)
            for step in range(start, n_steps):
                actor_lr = None
                if self.config.actor_cosine_schedule:
                    actor_lr = self.config.actor_lr * 0.5 * (1.0 + math.cos(math.pi * step / n_steps))
                index = torch.randint(len(data.rewards), (batch_size,), generator=generator).to(self.device)
                history.append(self.update({k: v[index] for k, v in tensors.items()}, actor_lr))
                if checkpoint is not None and ((step + 1) % checkpoint_every == 0 or step + 1 == n_steps):
                    progress_state = {**run, "step": step + 1, "generator": generator.get_state()}
                    _atomic_save({**self._state(), "fit_progress": progress_state}, checkpoint)
                if (step + 1) % 50 == 0 or step + 1 == n_steps:
                    last = {k: v.item() for k, v in history[-1].items()}
                    progress.update(
                        task,
                        completed=step + 1,
                        description=(
                            f"IQL Q {last['critic_loss']:.3f} V {last['value_loss']:.3f} pi {last['actor_loss']:.3f}"
                        ),
                    )
        if history:
            stacked = {k: torch.stack([h[k] for h in history]).cpu().tolist() for k in history[0]}
            self.history += [{k: stacked[k][i] for k in stacked} for i in range(len(history))]
        for module in (self.critic, self.value_net, self.actor):
            module.eval()
        return self

    def _resume(
        self, checkpoint: str | os.PathLike[str] | None, run: dict[str, int], generator: torch.Generator
    ) -> int:
        """The step to start from: 0, or that of ``checkpoint`` (whose state is loaded) when it exists."""
        if checkpoint is None or not Path(checkpoint).is_file():
            return 0
        data = _load_checkpoint(checkpoint, self.kind)
        saved = data.get("fit_progress")
        if saved is None or {k: saved[k] for k in run} != run:
            raise ValueError(
                f"{checkpoint} is not a checkpoint of this run ({run}); it holds "
                f"{ {k: saved[k] for k in run} if saved else 'no fit progress' }: use another file or delete it"
            )
        self._restore(data)
        generator.set_state(saved["generator"])
        return int(saved["step"])

    # ------------------------------------------------------------------ acting and values

    @torch.no_grad()
    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """SB3 ``predict``: (O,) → (A,) or (n_envs, O) → (n_envs, A) actions inside the action space.

        Deterministic actions are the policy mean (how IQL is evaluated); otherwise a Gaussian sample from the
        agent's seeded generator, clipped. ``state``/``episode_start`` are ignored (memoryless policy).
        """
        observations, single = self._observations(observation)
        mean, std = self.actor(observations)
        if not deterministic:
            noise = torch.randn(mean.shape, generator=self._generator, device=self.device)
            mean = mean + std * noise
        return self._finish_actions(self.scaler.unnormalize(mean), single), None

    def q_function(self) -> IQLQFunction:
        """The planner's :data:`~tt_agents.planner.QFunction`: min of the twin (target) Q networks, original
        reward scale, any input device."""
        return IQLQFunction(self)

    @torch.no_grad()
    def value(self, observation: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """``V(s)`` in the original reward scale: (O,) → scalar or (B, O) → (B,); a tensor in gives a tensor
        back (on its device), anything else a numpy array."""
        if isinstance(observation, torch.Tensor):
            device = observation.device
            obs = observation.to(self.device, torch.float32)
            values = self.value_net(obs.reshape(-1, self.observation_dim)) / self.reward_scale
            return values.reshape(observation.shape[:-1]).to(device)
        observations, single = self._observations(observation)
        values = (self.value_net(observations) / self.reward_scale).cpu().numpy()
        return values[0] if single else values

    # ------------------------------------------------------------------ persistence

    def _state(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "kind": self.kind,
            "observation_space": space_to_dict(self.observation_space),
            "action_space": space_to_dict(self.action_space),
            "config": self.config.to_dict(),
            "seed": self.seed,
            "reward_scale": self.reward_scale,
            "fitted_data": self._fitted_data,
            "modules": {
                "critic": self.critic.state_dict(),
                "target_critic": self.target_critic.state_dict(),
                "value": self.value_net.state_dict(),
                "actor": self.actor.state_dict(),
            },
            "optimizers": {
                "critic": self.critic_optimizer.state_dict(),
                "value": self.value_optimizer.state_dict(),
                "actor": self.actor_optimizer.state_dict(),
            },
        }

    def _restore(self, data: Mapping[str, Any]) -> None:
        self.critic.load_state_dict(data["modules"]["critic"])
        self.target_critic.load_state_dict(data["modules"]["target_critic"])
        self.value_net.load_state_dict(data["modules"]["value"])
        self.actor.load_state_dict(data["modules"]["actor"])
        self.critic_optimizer.load_state_dict(data["optimizers"]["critic"])
        self.value_optimizer.load_state_dict(data["optimizers"]["value"])
        self.actor_optimizer.load_state_dict(data["optimizers"]["actor"])
        self.reward_scale = float(data["reward_scale"])
        self._fitted_data = bool(data["fitted_data"])

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the agent (spaces, config, all networks, optimizers, reward scale) to one file, atomically."""
        _atomic_save(self._state(), path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str | torch.device = "auto") -> IQLAgent:
        """An agent from :meth:`save` whose predictions, Q-values and values equal the saved one's."""
        data = _load_checkpoint(path, cls.kind)
        agent = cls(
            space_from_dict(data["observation_space"]),
            space_from_dict(data["action_space"]),
            IQLConfig.from_dict(data["config"]),
            seed=data["seed"],
            device=device,
        )
        agent._restore(data)
        for module in (agent.critic, agent.value_net, agent.actor):
            module.eval()
        return agent
