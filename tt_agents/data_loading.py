"""Episodes → per-step arrays → fixed-length training windows.

Three stages, each a plain object:

1. :func:`load_episodes` reads a Minari dataset (by id or as a ``minari.MinariDataset``) or in-memory
   episodes into a list of validated :class:`Episode` objects (float32 arrays, no NaN/inf).
2. :meth:`TrajectoryData.from_episodes` joins each episode into rows ``[observation, action, reward,
   reward-to-go]`` (the :class:`~tt_agents.layout.TransitionLayout` column order). A true terminal step's
   reward is replaced by the termination penalty and the reward-to-go target is the authors'
   ``V_t = sum_{j>=0} discount^j r_{t+1+j}`` (it excludes ``r_t``; ``V`` of the last step is 0).
3. :class:`WindowDataset` tokenizes everything once and serves windows of ``sequence_length`` transitions
   (plus a goal prefix for goal-conditioned data), padded past an episode's end with the stop token.

Goal-conditioned data uses hindsight relabelling (paper Sec. 3.2): an episode's goal is the goal-space
position it finally reached (``load_episodes(..., goal_key="achieved_goal")`` reads it from the final
observation), and :func:`relabelled_prefixes` adds prefixes of the episodes, each relabelled with the position
it reached.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from .config import DataConfig
from .layout import TransitionLayout
from .spaces import check_flat_box, flatten_observation

if TYPE_CHECKING:
    import minari

_HOW_TO_MAKE = (
    "Make one locally with `tt-agents make-dataset ENV LEVEL` or `tt_agents.data_making.record_dataset(...)`."
)

ObservationKey = str | Sequence[str] | None
"""A Dict observation's key, or several keys whose entries are concatenated in that order."""


class DatasetNotAvailableError(FileNotFoundError):
    """A Minari dataset id that is neither stored locally nor downloadable."""


class TokenizerLike(Protocol):
    """What :class:`WindowDataset` needs from a tokenizer (see :class:`tt_agents.tokenizer.Tokenizer`)."""

    @property
    def n_bins(self) -> int: ...

    def encode(self, x: np.ndarray, columns: slice | None = None) -> np.ndarray: ...


# ---------------------------------------------------------------------------------------------- episodes


def _float_array(value: Any, name: str) -> np.ndarray:
    """``value`` as a float32 array; integer/bool data (a discrete space) is rejected for actions."""
    array = np.asarray(value)
    if name == "actions" and array.dtype.kind in "biu":
        raise ValueError(
            f"actions have integer dtype {array.dtype}: discrete action spaces are not supported "
            "(tt_agents needs continuous Box actions)"
        )
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
    return array.astype(np.float32)


def _check_finite(array: np.ndarray, name: str, per_step: bool = True) -> None:
    """Raise a ValueError naming ``name`` (and the first bad step when the first axis is time) on NaN/inf."""
    bad = ~np.isfinite(array)
    if bad.any():
        where = f" at step {np.argwhere(bad)[0][0]}" if per_step else ""
        raise ValueError(f"{name} contain NaN or inf{where} ({int(bad.sum())} non-finite value(s))")


@dataclass(eq=False)
class Episode:
    """One episode as plain arrays, validated on construction.

    ``observations`` may also be given with ``T + 1`` rows (Minari stores the observation after the last
    step): the extra row then becomes ``final_observation``.
    """

    observations: np.ndarray
    """(T, O) float32: the observations at which the actions were taken."""
    actions: np.ndarray
    """(T, A) float32."""
    rewards: np.ndarray
    """(T,) float32: raw environment rewards."""
    terminated: bool
    """The episode ended in a true terminal state (``False`` for a time-limit truncation)."""
    final_observation: np.ndarray | None = None
    """(O,) the observation after the last step, when known."""
    goal: np.ndarray | None = None
    """(G,) the goal the episode is conditioned on (hindsight: the goal-space position it finally reached)."""

    def __post_init__(self) -> None:
        rewards = _float_array(self.rewards, "rewards")
        if rewards.ndim != 1 or len(rewards) == 0:
            raise ValueError(f"rewards must have shape (T,) with T >= 1, got shape {rewards.shape}")
        n_steps = len(rewards)

        observations = _float_array(self.observations, "observations")
        if observations.ndim != 2:
            hint = (
                "; non-flat observations are not supported, flatten them first "
                "(e.g. gymnasium.wrappers.FlattenObservation)"
                if observations.ndim > 2
                else ""
            )
            raise ValueError(f"observations must have shape (T, obs_dim), got shape {observations.shape}{hint}")
        if len(observations) == n_steps + 1 and self.final_observation is None:
            observations, self.final_observation = observations[:-1], observations[-1]
        if len(observations) != n_steps:
            raise ValueError(
                f"observations have {len(observations)} rows but rewards have {n_steps} steps "
                f"(expected T = {n_steps} rows, or T + 1 with the final observation)"
            )

        actions = _float_array(self.actions, "actions")
        if actions.ndim != 2 or len(actions) != n_steps:
            raise ValueError(f"actions must have shape (T, action_dim) = ({n_steps}, A), got shape {actions.shape}")

        for name, array in (("observations", observations), ("actions", actions), ("rewards", rewards)):
            _check_finite(array, name)
        self.observations, self.actions, self.rewards = observations, actions, rewards
        self.terminated = bool(self.terminated)
        self._validate_final_observation_and_goal()

    def _validate_final_observation_and_goal(self) -> None:
        if self.final_observation is not None:
            final = _float_array(self.final_observation, "final_observation")
            obs_dim = self.observations.shape[1]
            if final.shape != (obs_dim,):
                raise ValueError(f"final_observation must have shape ({obs_dim},), got {final.shape}")
            _check_finite(final, "final_observation", per_step=False)
            self.final_observation = final
        if self.goal is not None:
            goal = _float_array(self.goal, "goal")
            if goal.ndim != 1 or len(goal) == 0:
                raise ValueError(f"goal must have shape (G,) with G >= 1, got shape {goal.shape}")
            _check_finite(goal, "goal", per_step=False)
            self.goal = goal

    def __len__(self) -> int:
        return len(self.rewards)


def _select_observations(
    observations: Any, observation_key: ObservationKey, goal_key: str | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Flat observations (T or T+1, O) and the hindsight goal (G,) from array or Dict observations."""
    if not isinstance(observations, Mapping):
        if observation_key is not None or goal_key is not None:
            raise ValueError(
                "observation_key/goal_key are given but the observations are an array, not a Dict observation"
            )
        return np.asarray(observations), None
    keys = (observation_key or "observation",) if isinstance(observation_key, str | None) else tuple(observation_key)
    for role, wanted in [*(("observation_key", k) for k in keys), ("goal_key", goal_key)]:
        if wanted is not None and wanted not in observations:
            raise ValueError(
                f"Dict observations have no key {wanted!r} ({role}); available keys: {sorted(observations)}"
            )
    goal = None
    if goal_key is not None:
        goal = np.asarray(observations[goal_key])[-1]  # (G,): reached at the episode's final observation
    if len(keys) == 1:
        return np.asarray(observations[keys[0]]), goal
    return flatten_observation(observations, keys), goal


def _terminated_from_flags(terminations: Any) -> bool:
    flags = np.asarray(terminations, dtype=bool).reshape(-1)
    if flags[:-1].any():
        raise ValueError(
            f"terminations is True at step {int(np.argmax(flags))} before the episode's last step "
            f"{len(flags) - 1}; split the data into one episode per terminal"
        )
    return bool(flags[-1]) if len(flags) else False


def _episode_from_mapping(item: Mapping[str, Any], observation_key: ObservationKey, goal_key: str | None) -> Episode:
    missing = {"observations", "actions", "rewards"} - set(item)
    if missing:
        raise ValueError(f"episode dict is missing key(s) {sorted(missing)}; it has {sorted(item)}")
    if "terminated" in item:
        terminated = bool(item["terminated"])
    elif "terminations" in item:
        terminated = _terminated_from_flags(item["terminations"])
    else:
        terminated = False
    observations, goal = _select_observations(item["observations"], observation_key, goal_key)
    return Episode(observations, item["actions"], item["rewards"], terminated, goal=goal)


def _truthy_env(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _download_blocker() -> str | None:
    """Why a Minari download cannot work here (checked up front: offline downloads hang in retries)."""
    remote = os.environ.get("MINARI_REMOTE", "hf://farama-minari")
    if remote.startswith("hf://"):
        if importlib.util.find_spec("huggingface_hub") is None:
            return "huggingface_hub is not installed (pip install 'minari[hf]')"
        if _truthy_env("HF_HUB_OFFLINE"):
            return "HF_HUB_OFFLINE is set, so downloads from the Hugging Face Hub are disabled"
    return None


def load_minari_dataset(dataset_id: str) -> minari.MinariDataset:
    """The local Minari dataset ``dataset_id``, downloading it if possible; else DatasetNotAvailableError."""
    import minari
    from minari.storage import get_dataset_path

    try:
        return minari.load_dataset(dataset_id)
    except FileNotFoundError:
        pass
    reason = _download_blocker()
    if reason is None:
        try:
            return minari.load_dataset(dataset_id, download=True)
        except Exception as exc:  # any failure (network, not found, missing extra) gets the one message below
            first_line = (str(exc).strip().splitlines() or [""])[0]
            reason = f"{type(exc).__name__}: {first_line}"
    raise DatasetNotAvailableError(
        f"Minari dataset {dataset_id!r} is not available locally and could not be downloaded ({reason}).\n"
        f"Local datasets are looked for in {get_dataset_path()} (set MINARI_DATASETS_PATH to change it; "
        "Minari's default is ~/.minari/datasets).\n" + _HOW_TO_MAKE
    ) from None


def _check_minari_spaces(dataset: minari.MinariDataset, observation_key: ObservationKey) -> None:
    from gymnasium import spaces

    action_space = dataset.action_space
    try:
        check_flat_box(action_space, "action_space")
    except TypeError:
        raise ValueError(
            f"dataset {dataset.id!r} has action space {action_space}; tt_agents supports flat continuous "
            "(1-D Box) action spaces only"
        ) from None
    observation_space = dataset.observation_space
    parts = [observation_space]
    if isinstance(observation_space, spaces.Dict):
        keys = (observation_key or "observation",) if isinstance(observation_key, str | None) else observation_key
        missing = [key for key in keys if key not in observation_space.spaces]
        if missing:
            raise ValueError(
                f"dataset {dataset.id!r} has Dict observations without key(s) {missing}; available keys: "
                f"{sorted(observation_space.spaces)} (pass observation_key=...)"
            )
        parts = [observation_space[key] for key in keys]
    for part in parts:
        try:
            check_flat_box(part, "observation_space")
        except TypeError:
            raise ValueError(
                f"dataset {dataset.id!r} has observation space {observation_space}; tt_agents needs flat (1-D Box) "
                "observations, or Dicts of them (flatten others, e.g. with gymnasium.wrappers.FlattenObservation, "
                "before recording)"
            ) from None


def load_episodes(
    source: str | minari.MinariDataset | Sequence[Episode | Mapping[str, Any]],
    *,
    observation_key: ObservationKey = None,
    goal_key: str | None = None,
) -> list[Episode]:
    """Read episodes from a Minari dataset id, a ``minari.MinariDataset`` or in-memory episodes.

    Args:
        source: a Minari dataset id (loaded locally, downloaded if possible, else
            :class:`DatasetNotAvailableError`), a ``minari.MinariDataset``, or a sequence of :class:`Episode`
            objects or dicts with keys ``observations`` (T or T+1 rows, or a dict of such arrays),
            ``actions``, ``rewards`` and optionally ``terminations``/``truncations`` (per-step Minari-style
            flags) or ``terminated`` (bool). Without termination information an episode counts as truncated.
        observation_key: the key of a Dict observation that holds the observation (default
            ``"observation"``), or a sequence of keys whose entries are concatenated in that order (a whole
            Dict observation as one flat row, like ``gymnasium.wrappers.FlattenObservation``). Applies to
            Minari datasets and dicts.
        goal_key: the key of a Dict observation whose value at the episode's final observation becomes
            :attr:`Episode.goal` (hindsight relabelling), e.g. ``"achieved_goal"``.

    Returns:
        The validated episodes, in dataset order.

    Raises:
        DatasetNotAvailableError: a Minari id that is neither local nor downloadable.
        ValueError: discrete actions, non-flat observations, NaN/inf, inconsistent lengths, missing keys.
    """
    if isinstance(source, str):
        source = load_minari_dataset(source)
    if isinstance(source, Sequence):
        items: Any = source
    else:
        import minari

        if not isinstance(source, minari.MinariDataset):
            raise TypeError(
                "load_episodes: source must be a Minari dataset id, a minari.MinariDataset or a list of "
                f"episodes, got {type(source).__name__}"
            )
        _check_minari_spaces(source, observation_key)
        items = (
            {
                "observations": ep.observations,
                "actions": ep.actions,
                "rewards": ep.rewards,
                "terminations": ep.terminations,
            }
            for ep in source.iterate_episodes()
        )

    episodes = []
    for index, item in enumerate(items):
        try:
            if isinstance(item, Episode):
                episodes.append(item)
            elif isinstance(item, Mapping):
                episodes.append(_episode_from_mapping(item, observation_key, goal_key))
            else:
                raise TypeError(f"expected an Episode or a dict, got {type(item).__name__}")
        except ValueError as exc:
            raise ValueError(f"episode {index}: {exc}") from None
    return episodes


def relabelled_prefixes(
    episodes: Sequence[Episode],
    n_per_episode: int,
    min_length: int = 4,
    seed: int = 0,
    *,
    step_reward: float = -1.0,
    goal_reward: float = 0.0,
) -> list[Episode]:
    """Hindsight relabelling with more goals: each episode followed by ``n_per_episode`` random prefixes of it.

    A prefix ending at step ``t`` is a trajectory whose final state is the position reached after step ``t``;
    it becomes a goal-reaching episode of its own (terminated, goal = that position, sparse goal-reaching
    rewards: ``step_reward`` on every step but the last, ``goal_reward`` on the last), exactly as the paper
    relabels whole trajectories with their final state. An expert's route to a farther goal passes through
    that point on a shortest route, so the prefix is a sensible demonstration for it too. This multiplies the
    distinct goals the model sees without any new environment steps.

    Args:
        episodes: goal-conditioned episodes (``goal`` set, e.g. from :func:`load_episodes` with
            ``goal_key="achieved_goal"``) whose observations are the achieved positions (as many columns as the
            goal has).
        n_per_episode: prefixes added per episode (fewer when the episode is short).
        min_length: shortest prefix, in steps.
        seed: seed of the prefix lengths.
        step_reward: reward of the steps before a prefix's last.
        goal_reward: reward of a prefix's last step, the one reaching its goal.

    Returns:
        The episodes in order, each followed by its prefixes.
    """
    rng = np.random.default_rng(seed)
    out: list[Episode] = []
    for episode in episodes:
        if episode.goal is None:
            raise ValueError("relabelled_prefixes needs goal-conditioned episodes (Episode.goal set)")
        if episode.observations.shape[1] != len(episode.goal):
            raise ValueError(
                f"relabelled_prefixes needs observations that are the achieved positions; they have "
                f"{episode.observations.shape[1]} columns but the goal has {len(episode.goal)}"
            )
        out.append(episode)
        lengths = np.arange(min_length, len(episode))  # prefixes strictly shorter than the episode
        if len(lengths) == 0 or n_per_episode < 1:
            continue
        for t in rng.choice(lengths, size=min(n_per_episode, len(lengths)), replace=False):
            reached = episode.observations[t]  # (G,) the position after step t - 1: the prefix's final state
            rewards = np.full(t, step_reward, dtype=np.float32)  # (t,)
            rewards[-1] = goal_reward
            out.append(Episode(episode.observations[:t], episode.actions[:t], rewards, True, reached, reached))
    return out


# ---------------------------------------------------------------------------------------------- trajectories


def reward_to_go(rewards: np.ndarray, discount: float) -> np.ndarray:
    """``V_t = sum_{j>=0} discount^j * rewards[t + 1 + j]`` (excludes ``rewards[t]``; the last ``V`` is 0).

    Args:
        rewards: (T,) rewards of one episode.
        discount: the discount factor.

    Returns:
        (T,) float64 reward-to-go.
    """
    values = np.zeros(len(rewards), dtype=np.float64)  # (T,)
    running = 0.0
    future = np.asarray(rewards, dtype=np.float64).tolist()
    for t in range(len(future) - 2, -1, -1):
        running = future[t + 1] + discount * running
        values[t] = running
    return values


@dataclass(eq=False)
class TrajectoryData:
    """Episodes as joined per-step rows ``[observation, action, reward, reward-to-go]``."""

    layout: TransitionLayout
    joined: list[np.ndarray]
    """Per episode (T_i, transition_dim) float32; the reward column holds the penalized reward."""
    terminated: list[bool]
    """Per episode: ended in a true terminal state."""
    goals: list[np.ndarray] | None
    """Per episode (G,) hindsight goal, or ``None`` when the data is not goal-conditioned."""
    returns: np.ndarray
    """(n_episodes,) undiscounted sums of the raw rewards (before the termination penalty)."""
    discount: float
    termination_penalty: float | None

    @classmethod
    def from_episodes(cls, episodes: Sequence[Episode], config: DataConfig | None = None) -> TrajectoryData:
        """Join episodes into rows, applying the termination penalty and computing the reward-to-go.

        Args:
            episodes: validated episodes with equal observation/action (and goal) sizes; either all or
                none of them have a goal.
            config: discount and termination penalty (defaults: :class:`~tt_agents.config.DataConfig`).
        """
        config = config or DataConfig()
        if not episodes:
            raise ValueError("TrajectoryData.from_episodes: no episodes")
        first = episodes[0]
        has_goal = first.goal is not None
        layout = TransitionLayout(
            observation_dim=first.observations.shape[1],
            action_dim=first.actions.shape[1],
            goal_dim=len(first.goal) if first.goal is not None else 0,
        )
        joined, goals = [], []
        for index, episode in enumerate(episodes):
            goal_dim = len(episode.goal) if episode.goal is not None else 0
            if (
                episode.observations.shape[1] != layout.observation_dim
                or episode.actions.shape[1] != layout.action_dim
                or (episode.goal is not None) != has_goal
                or goal_dim != layout.goal_dim
            ):
                raise ValueError(
                    f"episode {index} has observation/action/goal sizes ({episode.observations.shape[1]}, "
                    f"{episode.actions.shape[1]}, {goal_dim}) but episode 0 has ({layout.observation_dim}, "
                    f"{layout.action_dim}, {layout.goal_dim}); all episodes must match (and all or none "
                    "have a goal)"
                )
            rewards = episode.rewards.astype(np.float64)  # (T,)
            if episode.terminated and config.termination_penalty is not None:
                rewards[-1] = config.termination_penalty
            values = reward_to_go(rewards, config.discount)  # (T,)
            row = np.concatenate(
                [episode.observations, episode.actions, rewards[:, None], values[:, None]], axis=1
            )  # (T, D)
            joined.append(row.astype(np.float32))
            if episode.goal is not None:
                goals.append(episode.goal)
        return cls(
            layout=layout,
            joined=joined,
            terminated=[episode.terminated for episode in episodes],
            goals=goals if has_goal else None,
            returns=np.array([episode.rewards.sum(dtype=np.float64) for episode in episodes]),
            discount=config.discount,
            termination_penalty=config.termination_penalty,
        )

    @property
    def n_episodes(self) -> int:
        """Number of episodes."""
        return len(self.joined)

    @property
    def n_transitions(self) -> int:
        """Total steps over all episodes."""
        return sum(len(rows) for rows in self.joined)

    @property
    def episode_lengths(self) -> np.ndarray:
        """(n_episodes,) int64 steps per episode."""
        return np.array([len(rows) for rows in self.joined], dtype=np.int64)

    def token_columns(self) -> np.ndarray:
        """(n_transitions, layout.n_columns) float32: every joined row plus its episode's goal.

        This is what the tokenizer is fitted on (goal columns come after the transition columns).
        """
        if not self.joined:
            return np.zeros((0, self.layout.n_columns), dtype=np.float32)
        rows = np.concatenate(self.joined)  # (sum T_i, D)
        if self.goals is None:
            return rows
        goals = np.repeat(np.stack(self.goals), self.episode_lengths, axis=0)  # (sum T_i, G)
        return np.concatenate([rows, goals], axis=1).astype(np.float32)

    def _subset(self, indices: np.ndarray) -> TrajectoryData:
        return TrajectoryData(
            layout=self.layout,
            joined=[self.joined[i] for i in indices],
            terminated=[self.terminated[i] for i in indices],
            goals=[self.goals[i] for i in indices] if self.goals is not None else None,
            returns=self.returns[indices],
            discount=self.discount,
            termination_penalty=self.termination_penalty,
        )

    def split(self, validation_fraction: float, seed: int) -> tuple[TrajectoryData, TrajectoryData]:
        """(train, validation), split by episode at random with ``seed``.

        The validation part has ``round(validation_fraction * n_episodes)`` episodes, at least one when
        ``n_episodes >= 2`` and the fraction is positive, and always leaves one for training; it is empty
        when the fraction is 0 or there is a single episode. Each part keeps the original episode order.
        """
        if not 0.0 <= validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
        n = self.n_episodes
        n_validation = 0
        if n >= 2 and validation_fraction > 0:
            n_validation = min(n - 1, max(1, round(validation_fraction * n)))
        order = np.random.default_rng(seed).permutation(n)
        return self._subset(np.sort(order[n_validation:])), self._subset(np.sort(order[:n_validation]))


# ---------------------------------------------------------------------------------------------- windows


class WindowDataset(torch.utils.data.Dataset):
    """Token windows of ``sequence_length`` transitions, one starting at every step of every episode.

    Item ``i`` is ``(tokens, loss_mask)``, both of length ``G + L * D`` (goal tokens, then ``L`` transitions
    of ``D`` tokens each, row-major). Positions past the episode's end hold the stop token ``N``
    (``tokenizer.n_bins``): after a true terminal they are trained on (mask 1, the model learns the episode
    ends), after a time-limit truncation they are not (mask 0). Goal tokens have mask 0. The sequence is
    unshifted: the model takes ``tokens[:-1]`` as input and ``tokens[1:]`` (with ``mask[1:]``) as targets.

    All tokens are computed once here, so ``__getitem__`` only slices.
    """

    def __init__(self, data: TrajectoryData, tokenizer: TokenizerLike, sequence_length: int = 10) -> None:
        if sequence_length < 1:
            raise ValueError(f"sequence_length must be >= 1, got {sequence_length}")
        if data.n_episodes == 0:
            raise ValueError("WindowDataset: the data has no episodes")
        self.layout = data.layout
        self.sequence_length = sequence_length
        self.stop_token = int(tokenizer.n_bins)
        d, pad = self.layout.transition_dim, sequence_length - 1
        lengths = data.episode_lengths  # (E,)

        encoded = np.asarray(tokenizer.encode(np.concatenate(data.joined), columns=slice(0, d)))  # (sum T, D)
        tokens, masks, starts = [], [], []
        offset = 0
        for episode_tokens, terminated in zip(np.split(encoded, np.cumsum(lengths)[:-1]), data.terminated, strict=True):
            length = len(episode_tokens)
            padded = np.full((length + pad, d), self.stop_token, dtype=np.int32)  # (T + L - 1, D)
            padded[:length] = episode_tokens
            mask = np.zeros((length + pad, d), dtype=bool)  # (T + L - 1, D)
            mask[: length if not terminated else None] = True
            tokens.append(padded.reshape(-1))
            masks.append(mask.reshape(-1))
            starts.append(offset + np.arange(length) * d)
            offset += (length + pad) * d
        self._tokens = torch.from_numpy(np.concatenate(tokens))  # (sum (T + L - 1) * D,) int32
        self._mask = torch.from_numpy(np.concatenate(masks))  # (sum (T + L - 1) * D,) bool
        self._starts = np.concatenate(starts)  # (n_windows,) flat offset of each window
        self._episode = np.repeat(np.arange(data.n_episodes), lengths)  # (n_windows,)
        self._goal_tokens: torch.Tensor | None = None
        if self.layout.goal_dim > 0:
            if data.goals is None:
                raise ValueError("WindowDataset: the layout has goal columns but the data has no goals")
            goal_tokens = tokenizer.encode(np.stack(data.goals), columns=self.layout.goal_slice)  # (E, G)
            self._goal_tokens = torch.as_tensor(np.asarray(goal_tokens), dtype=torch.int64)

    @property
    def sequence_tokens(self) -> int:
        """Tokens per item: ``goal_dim + sequence_length * transition_dim``."""
        return self.layout.goal_dim + self.sequence_length * self.layout.transition_dim

    def __len__(self) -> int:
        return len(self._starts)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        tokens, mask = self.batch(torch.tensor([i]))
        return tokens[0], mask[0]

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows ``indices`` (B,) at once: tokens (B, G + L * D) int64 and loss mask (B, G + L * D) float32."""
        offsets = torch.arange(self.sequence_length * self.layout.transition_dim)  # (L * D,)
        flat = torch.as_tensor(self._starts)[indices][:, None] + offsets  # (B, L * D)
        tokens = self._tokens[flat].long()
        mask = self._mask[flat].float()
        if self._goal_tokens is not None:
            goal = self._goal_tokens[torch.as_tensor(self._episode)[indices]]  # (B, G)
            tokens = torch.cat([goal, tokens], dim=1)
            mask = torch.cat([torch.zeros(goal.shape), mask], dim=1)
        return tokens, mask
