"""What the agent is given, checked before it changes any state: observations, rewards, episode starts, training
budgets, and the training data (warnings for data that trains but probably not as meant)."""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import replace
from typing import Any

import numpy as np
from gymnasium import spaces

from .config import AgentConfig, TrainConfig
from .data_loading import Episode, TrajectoryData, reference_scores_of
from .spaces import (
    MULTI_CATEGORICAL_SPACES,
    are_categories,
    check_category_columns,
    check_discrete_actions,
    space_categories,
)


def check_categories_fit_the_bins(
    n_bins: int,
    observation_space: spaces.Space,
    action_space: spaces.Space,
    observation_columns: tuple[int | None, ...] | None = None,
) -> None:
    """A ValueError unless every categorical space's categories fit the tokenizer's ``n_bins`` (one token each).
    ``observation_columns``: the categories of each observation column (None for a continuous one) where the agent
    reads the entries of a Dict or Tuple observation."""
    observation_categories = observation_columns or space_categories(observation_space, "observation_space")
    per_column = (
        ("observation_space", observation_space, observation_categories),
        ("action_space", action_space, space_categories(action_space, "action_space")),
    )
    for name, space, categories in per_column:
        most = max((n for n in categories or () if n is not None), default=0)
        if most > n_bins:
            raise ValueError(
                f"{name} {space!r} has more categories than the tokenizer's {n_bins} bins (one token each): "
                f"use a config with TokenizerConfig(n_bins={most}) or more"
            )


def check_q_function_request(
    q_function: Any, goal_conditioned: bool, observation_space: spaces.Space, action_space: spaces.Space
) -> None:
    """A ValueError or TypeError, before any training, for a ``q_function`` that ``fit`` cannot use: any in goal
    mode, a name other than ``"iql"``, and ``"iql"`` for spaces IQL does not take."""
    if q_function is not None and goal_conditioned:
        raise ValueError("q_function is for 'q' mode; this agent plans in goal mode (the modes exclude each other)")
    if isinstance(q_function, str) and q_function != "iql":
        raise ValueError(f"q_function={q_function!r}: the only trainable Q-function is 'iql'")
    if isinstance(q_function, str) and isinstance(action_space, MULTI_CATEGORICAL_SPACES):
        raise TypeError(
            f"q_function='iql': IQL takes Box and Discrete action spaces, not {action_space!r} (pass a Q-function "
            "of your own, or map the action combinations onto one Discrete)"
        )
    if isinstance(q_function, str) and isinstance(observation_space, (spaces.Tuple, *MULTI_CATEGORICAL_SPACES)):
        raise TypeError(
            f"q_function='iql': IQL reads Box, Discrete and Dict observations, not {observation_space!r} (pass a "
            "Q-function of your own that reads them)"
        )


def check_data_actions(episodes: list[Episode], action_space: spaces.Space) -> None:
    """A ValueError unless the data's actions suit ``action_space``: integer actions of shape (T,) only for a
    Discrete space, whose categories they must be, as each entry of a MultiDiscrete or MultiBinary space's must."""
    if isinstance(action_space, spaces.Discrete):
        check_discrete_actions(np.concatenate([e.actions[:, 0] for e in episodes]), action_space)
    elif isinstance(action_space, MULTI_CATEGORICAL_SPACES):
        actions = np.concatenate([e.actions for e in episodes])  # (N, A): the layout check has the width
        if actions.shape[1] == action_space.shape[0]:
            name = f"the data's actions for {action_space!r}"
            check_category_columns(actions, space_categories(action_space), name)
    elif any(e.discrete_actions for e in episodes):
        raise ValueError(
            f"the data's actions are integers (a Discrete action space) but the agent's action space is "
            f"{action_space!r}: make the agent with the environment's Discrete action space"
        )


def check_data_observations(
    episodes: list[Episode],
    observation_space: spaces.Space,
    observation_columns: tuple[int | None, ...] | None = None,
) -> None:
    """A ValueError unless the data's observations suit ``observation_space``: integer observations of shape (T,)
    (or T + 1) only for a Discrete space, whose categories they must be (final observations included), as each entry
    of a MultiDiscrete or MultiBinary space's must, and the columns of a Dict's or Tuple's categorical entries
    (``observation_columns``: their categories, None for continuous columns)."""
    categorical = [column for column, n in enumerate(observation_columns or ()) if n is not None]
    if categorical:
        finals = [e.final_observation[None] for e in episodes if e.final_observation is not None]
        observations = np.concatenate([e.observations for e in episodes] + finals)  # (N, O)
        if observations.shape[1] == len(observation_columns):
            name = f"the data's observations, categorical columns {categorical} of {observation_space!r}"
            check_category_columns(observations, observation_columns, name)
        return
    if isinstance(observation_space, spaces.Discrete):
        if not all(e.discrete_observations for e in episodes):
            raise ValueError(
                f"the agent's observation space is {observation_space!r} but the data's observations are not "
                "integers of shape (T,) or (T + 1,): is the data from this environment?"
            )
        finals = [e.final_observation for e in episodes if e.final_observation is not None]
        values = np.concatenate([e.observations[:, 0] for e in episodes] + finals)
        if not are_categories(values, int(observation_space.n)):
            raise ValueError(
                f"the data's observations must be the categories 0 .. {int(observation_space.n) - 1} of "
                f"{observation_space!r}, got values in [{values.min():g}, {values.max():g}]"
            )
    elif isinstance(observation_space, MULTI_CATEGORICAL_SPACES):
        finals = [e.final_observation[None] for e in episodes if e.final_observation is not None]
        observations = np.concatenate([e.observations for e in episodes] + finals)  # (N, O)
        if observations.shape[1] == observation_space.shape[0]:
            name = f"the data's observations for {observation_space!r}"
            check_category_columns(observations, space_categories(observation_space), name)
    elif any(e.discrete_observations for e in episodes):
        raise ValueError(
            f"the data's observations are integers of shape (T,) (a Discrete observation space) but the agent's "
            f"observation space is {observation_space!r}: make the agent with the environment's observation space"
        )


def warn_about_data(episodes: list[Episode], action_space: spaces.Space) -> None:
    """Warn about data that trains but probably not as meant: actions outside a Box action space (the agent's
    actions are clipped to it) and data whose every episode has a single step (no next observation to learn from;
    a game that often ends at its first step, as Blackjack does, is not warned about). A Discrete space's
    categories are checked by the agent, which cannot train on others."""
    if isinstance(action_space, spaces.Box):
        _warn_about_actions_outside(np.concatenate([e.actions for e in episodes]), action_space)  # (N, A)
    single = sum(len(e) == 1 for e in episodes)
    if single == len(episodes):
        warnings.warn(
            f"{single} of {len(episodes)} episodes have a single step: the model never sees a next observation, so "
            "plans past the first step are guesses (plan with horizon=1)",
            stacklevel=3,
        )


def warn_about_terminal_rewards(episodes: list[Episode], termination_penalty: float | None) -> None:
    """Warn when the data looks like a task whose termination is a success, which ``termination_penalty`` (made
    for tasks where termination is a fall) would turn into a penalty: a terminal step rewarded above every
    non-terminal step of the data (a goal bonus, e.g. FrozenLake's), or no positive reward at all (step costs that
    termination ends, e.g. CliffWalking's or MountainCar's)."""
    terminal = [float(e.rewards[-1]) for e in episodes if e.terminated]
    if termination_penalty is None or not terminal:
        return
    others = np.concatenate([e.rewards[:-1] if e.terminated else e.rewards for e in episodes])
    best_other = float(others.max()) if len(others) else -math.inf
    bonus = sum(r > best_other for r in terminal)
    costs_only = max(terminal) <= 0.0 and best_other <= 0.0
    if bonus or costs_only:
        why = (
            f"{bonus} of {len(terminal)} terminal steps are rewarded above every other step"
            if bonus
            else "no step of the data has a positive reward"
        )
        warnings.warn(
            f"{why}: termination here looks like a success, but DataConfig.termination_penalty "
            f"({termination_penalty:g}, for tasks where termination is a fall) replaces the reward of every terminal "
            "step. Where reaching a terminal state is the goal, use DataConfig(termination_penalty=None).",
            stacklevel=3,
        )


def _warn_about_actions_outside(actions: np.ndarray, action_space: spaces.Box) -> None:
    outside = (actions < action_space.low - 1e-6) | (actions > action_space.high + 1e-6)  # (N, A)
    if outside.any():
        worst = float(np.max(np.abs(actions[outside.any(1)])))
        warnings.warn(
            f"{int(outside.any(1).sum())} of {len(actions)} actions in the data lie outside the action space "
            f"[{action_space.low.min():g}, {action_space.high.max():g}] (largest magnitude {worst:g}); the agent's "
            "actions are clipped to the space. Is the data from this environment, with actions unscaled?",
            stacklevel=4,
        )


FEW_PASSES = 3.0
"""Below this many passes over the training windows a default step budget is warned about: on walker2d-medium data
(100k transitions) imitation mode earned half of BC's return after 2.7 passes and as much as BC after about 5."""


def warn_about_observations_far_outside(observations: np.ndarray, bounds: np.ndarray, stacklevel: int) -> bool:
    """Warn when an observation (n, O) lies far outside the range of its continuous column in the training data
    (``bounds`` (O, 2): each column's lowest and highest value, NaN for a categorical column): below the lowest value
    or above the highest by more than the column's whole range (at least 1 for a column of one value). The model
    reads such a value as its nearest edge bin, silently; an environment other than the training one, or an
    observation scaled otherwise, is the likely cause. Returns whether it warned."""
    low, high = bounds[:, 0], bounds[:, 1]  # (O,)
    span = high - low
    margin = np.where(span > 0, span, np.maximum(np.abs(low), 1.0))
    far = (observations < low - margin) | (observations > high + margin)  # (n, O); NaN bounds compare False
    if not far.any():
        return False
    row, column = np.argwhere(far)[0]
    warnings.warn(
        f"observation column {column} is {observations[row, column]:.6g}, far outside the range the agent was trained "
        f"on ([{low[column]:.6g}, {high[column]:.6g}]); the model reads it as the nearest edge bin. Is this the "
        "environment, and the observation scaling, the agent was trained on? (warned once per agent)",
        stacklevel=stacklevel,
    )
    return True


def steps_for(train_cfg: TrainConfig, n_windows: int, asked_steps: bool) -> TrainConfig:
    """``train_cfg`` with a budget in passes turned into steps over ``n_windows`` training windows, and a step
    budget taken from the config (not asked for in ``fit``) raised to ``min_epochs`` passes; such a budget still
    under :data:`FEW_PASSES` passes is warned about."""

    def steps(passes: float) -> int:
        return max(1, math.ceil(passes * n_windows / train_cfg.batch_size))

    if train_cfg.n_epochs is not None:
        return replace(train_cfg, n_steps=steps(train_cfg.n_epochs))
    if not asked_steps and train_cfg.min_epochs is not None:
        train_cfg = replace(train_cfg, n_steps=max(train_cfg.n_steps, steps(train_cfg.min_epochs)))
    passes = train_cfg.n_steps * train_cfg.batch_size / max(1, n_windows)
    if not asked_steps and passes < FEW_PASSES:
        warnings.warn(
            f"fit: the config's {train_cfg.n_steps} steps of {train_cfg.batch_size} windows are {passes:.1f} passes "
            f"over the {n_windows:,} training windows; on walker2d-medium data imitation needed about 5 passes to "
            "act as well as BC (2.7 gave half its return). Ask for a budget in passes: fit(dataset, n_epochs=5).",
            stacklevel=3,
        )
    return train_cfg


def check_budget(**budget: Any) -> None:
    """``fit``'s ``n_steps`` (None or a positive integer) and ``n_epochs`` (None or a positive number)."""
    for name, value in budget.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real) or value <= 0):
            raise ValueError(f"fit: {name} must be a positive number, got {value!r}")
        if name == "n_steps" and value is not None and not isinstance(value, numbers.Integral):
            raise ValueError(f"fit: n_steps must be a whole number of gradient steps, got {value!r}")


def checked_reward(reward: Any, name: str) -> float | None:
    """A real, finite reward as a float (``None`` stays ``None``); anything else is refused before it is filed."""
    if reward is None:
        return None
    if isinstance(reward, bool) or not isinstance(reward, numbers.Real | np.ndarray):
        raise TypeError(f"{name} must be a real number or None, got {type(reward).__name__} {reward!r}")
    if isinstance(reward, np.ndarray) and (reward.size != 1 or not np.issubdtype(reward.dtype, np.number)):
        raise TypeError(f"{name} must be a single real number, got an array of shape {reward.shape}")
    value = float(reward)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def episode_starts(episode_start: Any, n_envs: int) -> np.ndarray:
    """``episode_start`` as (n_envs,) bools: None, or one bool (or 0/1) per environment."""
    if episode_start is None:
        return np.zeros(n_envs, dtype=bool)
    starts = np.asarray(episode_start)
    if starts.dtype.kind not in "biuf" or starts.size != n_envs or not np.isin(starts, (0, 1)).all():
        raise ValueError(f"episode_start must hold one bool per environment ({n_envs}), got {episode_start!r}")
    return starts.reshape(n_envs).astype(bool)


def as_rows(value: Any, dim: int, name: str) -> tuple[np.ndarray, bool]:
    """``value`` as (n, dim) float64 with clear errors; also whether it was a single row."""
    if isinstance(value, dict):
        raise TypeError(f"{name}: expected an array, got a dict with keys {sorted(value)}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected a numeric array, got {type(value).__name__}") from exc
    single = array.ndim == 1
    if array.ndim not in (1, 2) or array.shape[-1] != dim:
        raise ValueError(f"{name}: expected shape ({dim},) or (n_envs, {dim}), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf: {array}")
    if array.size == 0:
        raise ValueError(f"{name}: an empty batch (shape {array.shape}); give at least one row")
    return array.reshape(-1, dim), single


def check_data_maps(episodes: list[Episode], map_shape: tuple[int, int] | None, map_classes: int) -> None:
    """A ValueError, before training, when the episodes' maps do not fit the network: maps where it reads none,
    a missing map, another shape, or a cell outside ``[0, map_classes)``."""
    for index, episode in enumerate(episodes):
        if map_shape is None:
            if episode.map is not None:
                raise ValueError(
                    f"episode {index} has a map but the agent reads none (its observation space has no 'map' entry)"
                )
            continue
        if episode.map is None or episode.map_shape != tuple(map_shape):
            got = "no map" if episode.map is None else f"a map of shape {episode.map.shape}"
            raise ValueError(f"the agent reads a {tuple(map_shape)} map per episode; episode {index} has {got}")
        if int(episode.map.max()) >= map_classes:
            raise ValueError(
                f"episode {index}'s map has a cell of value {int(episode.map.max())}; ModelConfig.map_classes is "
                f"{map_classes}"
            )


def with_map_shape(config: AgentConfig, shape: tuple[int, int] | None) -> AgentConfig:
    """``config`` with the network reading the observation space's map (``ModelConfig.map_shape``)."""
    if config.model.map_shape is not None and tuple(config.model.map_shape) != shape:
        space_map = "has no 'map' entry" if shape is None else f"has a {shape} map"
        raise ValueError(f"ModelConfig.map_shape is {config.model.map_shape}; the observation space {space_map}")
    return config if shape is None else replace(config, model=replace(config.model, map_shape=shape))


def dataset_info(dataset: Any, data: TrajectoryData) -> dict[str, Any]:
    """Where the data came from and its returns, for reports and normalized scores."""
    info: dict[str, Any] = {
        "n_episodes": data.n_episodes,
        "n_transitions": data.n_transitions,
        "mean_return": float(np.mean(data.returns)),
    }
    spec = getattr(dataset, "spec", None)
    if spec is not None:
        info["dataset_id"] = spec.dataset_id
        scores = reference_scores_of(dataset.storage.metadata)
        if scores is not None:
            info["ref_min_score"], info["ref_max_score"] = scores
    return info
