"""IQL's hyperparameters (:class:`IQLConfig`), checked when made and read back from a checkpoint's JSON."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .._validation import as_widths, check_types, dataclass_from_dict, in_unit_interval, require


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
        self.hidden = as_widths(self.hidden)  # a JSON list, a NumPy array
        check_types(self)
        require(
            self,
            {
                "hidden": (len(self.hidden) > 0 and min(self.hidden) >= 1, "a non-empty tuple of widths >= 1"),
                "actor_lr": (math.isfinite(self.actor_lr) and self.actor_lr > 0, "finite and > 0"),
                "critic_lr": (math.isfinite(self.critic_lr) and self.critic_lr > 0, "finite and > 0"),
                "value_lr": (math.isfinite(self.value_lr) and self.value_lr > 0, "finite and > 0"),
                "batch_size": (self.batch_size >= 1, ">= 1"),
                "discount": (0.0 <= self.discount <= 1.0, "in [0, 1]"),
                "expectile": (0.0 < self.expectile < 1.0, "in (0, 1)"),
                "temperature": (math.isfinite(self.temperature) and self.temperature >= 0, "finite and >= 0"),
                "max_weight": (self.max_weight > 0, "> 0"),
                "polyak": (in_unit_interval(self.polyak), "in (0, 1]"),
                "reward_range": (math.isfinite(self.reward_range) and self.reward_range > 0, "finite and > 0"),
                "reward_shift": (math.isfinite(self.reward_shift), "finite"),
            },
        )

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
        return dataclass_from_dict(cls, dict(data) if isinstance(data, Mapping) else data)
