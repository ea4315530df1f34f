"""Episodes joined into per-step rows ``[observation, action, reward, reward-to-go]`` (:class:`TrajectoryData`).

The rows follow the :class:`~tt_agents.layout.TransitionLayout` column order. A true terminal step's reward is
replaced by the termination penalty and the reward-to-go target is the authors'
``V_t = sum_{j>=0} discount^j r_{t+1+j}`` (it excludes ``r_t``; ``V`` of the last step is 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..config import DataConfig
from ..layout import TransitionLayout
from .episodes import Episode


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
    maps: list[np.ndarray] | None = None
    """Per episode its (H, W) map or (T, H, W) maps per step (:attr:`Episode.map`), or ``None`` without maps."""

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
        for index, episode in enumerate(episodes):
            if episode.map_shape != first.map_shape:
                raise ValueError(
                    f"episode {index} has map shape {episode.map_shape} but episode 0 has {first.map_shape}; all "
                    "episodes must have maps of one shape, or none"
                )
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
            maps=None if first.map is None else [episode.map for episode in episodes],
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
    def map_per_step(self) -> bool:
        """Some episode's map changes through it (a (T, H, W) map per step)."""
        return self.maps is not None and any(m.ndim == 3 for m in self.maps)

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
            maps=[self.maps[i] for i in indices] if self.maps is not None else None,
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
