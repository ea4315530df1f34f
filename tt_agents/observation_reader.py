"""How an agent reads its spaces: the transition layout they imply, the tokenizer's categorical columns, and the
rows (and goals) of an observation given to ``predict``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from .inputs import as_rows
from .layout import TransitionLayout
from .spaces import (
    COMPOSITE_OBSERVATIONS,
    MULTI_CATEGORICAL_SPACES,
    DictKey,
    categorical_rows,
    check_action_space,
    check_category_columns,
    check_flat_box,
    check_observation_space,
    dict_keys,
    discrete_rows,
    entry_categories,
    flatten_observation,
    scalar_keys,
    space_categories,
    without_map,
)


@dataclass(frozen=True, eq=False)
class ObservationReader:
    """The layout of an agent's transitions and how its observations become rows of numbers.

    ``keys``: outside goal mode, the entries of a Dict or Tuple observation space, concatenated in this order
    (None for any other space); ``columns``: with ``keys``, each column's categories (None for a continuous one);
    ``scalars``: with ``keys``, the ``Discrete`` entries.
    """

    observation_space: spaces.Space
    action_space: spaces.Space
    layout: TransitionLayout
    goal_mode: bool
    keys: tuple[DictKey, ...] | None = None
    columns: tuple[int | None, ...] = ()
    scalars: tuple[DictKey, ...] = ()

    @classmethod
    def from_spaces(
        cls, observation_space: spaces.Space, action_space: spaces.Space, goal_mode: bool
    ) -> ObservationReader:
        """A TypeError names an unsupported space (or a goal-mode space without ``observation`` and
        ``desired_goal``); a ``map`` entry is left to the map encoder and takes no columns."""
        action_dim = check_action_space(action_space)
        space = without_map(observation_space)
        reader = {"observation_space": observation_space, "action_space": action_space, "goal_mode": goal_mode}
        if goal_mode and not isinstance(space, spaces.Dict):
            raise TypeError("planner mode 'goal' needs a Dict observation space with 'observation' and 'desired_goal'")
        if not isinstance(space, COMPOSITE_OBSERVATIONS):
            return cls(**reader, layout=TransitionLayout(check_observation_space(space), action_dim))
        if not goal_mode:
            keys = dict_keys(space, categorical=True)
            columns = entry_categories(space, keys)
            layout = TransitionLayout(len(columns), action_dim)
            return cls(**reader, layout=layout, keys=keys, columns=columns, scalars=scalar_keys(space, keys))
        missing = {"observation", "desired_goal"} - set(space.spaces)
        if missing:
            raise TypeError(
                f"goal mode needs Dict observations with 'observation' and 'desired_goal'; missing {missing}"
            )
        layout = TransitionLayout(  # other keys (achieved_goal, ...) are not used in goal mode
            check_flat_box(space["observation"], "observation_space['observation']"),
            action_dim,
            check_flat_box(space["desired_goal"], "observation_space['desired_goal']"),
        )
        return cls(**reader, layout=layout)

    def categories(self) -> dict[int, int]:
        """The tokenizer's categorical columns: those of a Discrete, MultiDiscrete or MultiBinary observation and
        action space, and of the categorical entries of a Dict or Tuple observation."""
        categories = {}
        for per_column, columns in (
            (self.columns or space_categories(self.observation_space), self.layout.observation_slice),
            (space_categories(self.action_space), self.layout.action_slice),
        ):
            for column, n in enumerate(per_column or (), start=columns.start):
                if n is not None:
                    categories[column] = n
        return categories

    def rows(self, observation: Any) -> tuple[np.ndarray, np.ndarray | None, bool]:
        """-> observations (n, O) float64, goals (n, G) or None, whether the input was a single observation."""
        goals = None
        if self.goal_mode:
            if (
                not isinstance(observation, dict)
                or "observation" not in observation
                or "desired_goal" not in observation
            ):
                raise TypeError(
                    "this goal-conditioned agent expects a Dict observation with 'observation' and 'desired_goal', "
                    f"got {type(observation).__name__}"
                )
            goals = as_rows(observation["desired_goal"], self.layout.goal_dim, "desired_goal")[0]
            observation = observation["observation"]
        elif self.keys is not None:
            observation = flatten_observation(observation, self.keys, self.layout.observation_dim, self.scalars)
        elif isinstance(observation, dict):
            raise TypeError(f"this agent expects an array observation of {self.observation_space!r}, got a dict")
        if isinstance(self.observation_space, spaces.Discrete):
            observations, single = discrete_rows(observation, self.observation_space)
        elif isinstance(self.observation_space, MULTI_CATEGORICAL_SPACES):
            observations, single = categorical_rows(observation, self.observation_space, "observation")
        else:
            observations, single = as_rows(observation, self.layout.observation_dim, "observation")
            check_category_columns(observations, self.columns, "observation")
        if goals is not None and goals.shape[0] != observations.shape[0]:
            raise ValueError(f"{goals.shape[0]} goals for {observations.shape[0]} observations")
        return observations, goals, single
