"""The layout of one transition: which token slot holds what.

Every other module reads offsets from :class:`TransitionLayout` instead of computing them by hand.
A transition is ``[observation (O), action (A), reward (1), reward-to-go (1)]``; goal-conditioned models
prepend ``goal_dim`` goal tokens once, before the first transition.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TransitionLayout:
    """Sizes and offsets of the slots of one transition.

    Column order of a joined transition row (and token order within a transition):
    ``observation_dim`` observation columns, ``action_dim`` action columns, one reward column, one
    reward-to-go (value) column. Goal columns, when ``goal_dim > 0``, come after the transition columns in
    the tokenizer and before the first transition in a token sequence.
    """

    observation_dim: int
    action_dim: int
    goal_dim: int = 0

    def __post_init__(self) -> None:
        for name in ("observation_dim", "action_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"TransitionLayout.{name} must be >= 1, got {getattr(self, name)}")
        if self.goal_dim < 0:
            raise ValueError(f"TransitionLayout.goal_dim must be >= 0, got {self.goal_dim}")

    @property
    def transition_dim(self) -> int:
        """Tokens per transition: observation + action + reward + reward-to-go."""
        return self.observation_dim + self.action_dim + 2

    @property
    def observation_slice(self) -> slice:
        return slice(0, self.observation_dim)

    @property
    def action_slice(self) -> slice:
        return slice(self.observation_dim, self.observation_dim + self.action_dim)

    @property
    def reward_index(self) -> int:
        return self.observation_dim + self.action_dim

    @property
    def value_index(self) -> int:
        return self.observation_dim + self.action_dim + 1

    @property
    def goal_slice(self) -> slice:
        """Goal columns in the tokenizer (after the transition columns)."""
        return slice(self.transition_dim, self.transition_dim + self.goal_dim)

    @property
    def n_columns(self) -> int:
        """Columns the tokenizer discretizes: transition columns then goal columns."""
        return self.transition_dim + self.goal_dim

    def window_tokens(self, n_transitions: int) -> int:
        """Tokens of a training window of ``n_transitions`` transitions: the goal prefix, then the transitions.
        The network reads one fewer (its block), since the last token is only a target."""
        return self.goal_dim + n_transitions * self.transition_dim

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, int]) -> TransitionLayout:
        return cls(**d)
