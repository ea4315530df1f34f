"""What an agent carries between ``predict`` calls: each environment's past transitions (SB3's ``state``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class EnvContext:
    """One environment's history: past transitions, and the transition whose outcome is pending."""

    observations: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    pending: tuple[np.ndarray, np.ndarray, float] | None = None
    """(observation, action, predicted reward) of the last action, committed at the next step."""

    def commit(self, reward: float | None, keep: int) -> None:
        """File the pending transition with the real ``reward`` (or the model's prediction when ``None``)."""
        if self.pending is None:
            return
        obs, act, predicted = self.pending
        self.observations.append(obs)
        self.actions.append(act)
        self.rewards.append(predicted if reward is None else float(reward))
        del self.observations[:-keep], self.actions[:-keep], self.rewards[:-keep]
        self.pending = None


@dataclass
class AgentState:
    """What ``predict`` carries between calls for a batch of environments (SB3's ``state``).

    ``rewards``: set ``state.rewards[i]`` to env i's real reward after a step to plan with it instead of
    the model's prediction (``evaluate(..., use_rewards=True)`` does this); it is consumed at the next call.
    """

    envs: list[EnvContext]
    rewards: list[float | None]

    @classmethod
    def new(cls, n_envs: int) -> AgentState:
        return cls([EnvContext() for _ in range(n_envs)], [None] * n_envs)
