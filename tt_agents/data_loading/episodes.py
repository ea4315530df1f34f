"""One episode as validated plain arrays (:class:`Episode`), read from arrays or Minari-style dicts.

An episode dict has keys ``observations`` (``T`` or ``T + 1`` rows, or a Dict observation: a mapping of such
arrays), ``actions``, ``rewards`` and optionally per-step ``terminations``/``truncations`` flags or a
``terminated`` bool. A Dict observation gives the flat observation by key (or several keys, concatenated) and,
with ``goal_key``, the hindsight goal: the goal-space position reached at the episode's final observation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..spaces import DictKey, dict_entry, dict_key_name, flatten_observation, has_dict_entry

ObservationKey = str | Sequence[DictKey] | None
"""A Dict observation's key, or several keys whose entries are concatenated in that order."""


def _float_array(value: Any, name: str) -> np.ndarray:
    """``value`` as a float32 array (integers and bools converted)."""
    array = np.asarray(value)
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
    map: np.ndarray | None = None
    """Non-negative integer cells (paper Appendix F): the episode's map (H, W), the same through the episode, or a
    map per step (T, H, W) that changes (e.g. an agent-centred view; ``T + 1`` rows lose the last as
    ``observations`` do). :meth:`map_at` gives step ``t``'s."""
    discrete_actions: bool = field(init=False, default=False)
    """The actions were given as integers of shape (T,) or (T, 1): a ``Discrete`` action space's (stored (T, 1))."""
    discrete_observations: bool = field(init=False, default=False)
    """The observations were given as integers of shape (T,) or (T + 1,): a ``Discrete`` observation space's (stored
    (T, 1))."""

    def __post_init__(self) -> None:
        rewards = _float_array(self.rewards, "rewards")
        if rewards.ndim != 1 or len(rewards) == 0:
            raise ValueError(f"rewards must have shape (T,) with T >= 1, got shape {rewards.shape}")
        n_steps = len(rewards)

        observations = self._checked_observations(n_steps)

        raw_actions = np.asarray(self.actions)
        if raw_actions.dtype.kind in "biu" and (raw_actions.ndim == 1 or raw_actions.shape[1:] == (1,)):
            self.discrete_actions = True
            raw_actions = raw_actions.reshape(-1, 1)
        actions = _float_array(raw_actions, "actions")
        if actions.ndim == 1 and len(actions) == n_steps:
            raise ValueError(
                f"actions have shape {actions.shape} of dtype {raw_actions.dtype}: a Discrete action space's actions "
                "are integers (e.g. actions.astype(np.int64)), a Box's have shape (T, action_dim) (e.g. "
                "actions.reshape(-1, 1) for a one-dimensional Box)"
            )
        if actions.ndim != 2:
            raise ValueError(f"actions must have shape (T, action_dim) with T = {n_steps}, got shape {actions.shape}")
        _check_one_reward_per_action(len(actions), n_steps)

        for name, array in (("observations", observations), ("actions", actions), ("rewards", rewards)):
            _check_finite(array, name)
        self.observations, self.actions, self.rewards = observations, actions, rewards
        self.terminated = bool(self.terminated)
        self._validate_final_observation_and_goal()

    def _checked_observations(self, n_steps: int) -> np.ndarray:
        """(T, O) float32 observations (a Discrete space's integers of shape (T,) as (T, 1)), the ``T + 1``-th row
        split off as ``final_observation``."""
        raw_observations = np.asarray(self.observations)
        if raw_observations.ndim == 1 and raw_observations.dtype.kind in "biu":
            self.discrete_observations = True
            raw_observations = raw_observations.reshape(-1, 1)
            if self.final_observation is not None:
                self.final_observation = np.asarray(self.final_observation).reshape(1)
        observations = _float_array(raw_observations, "observations")
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
        return observations

    def replaced(self, **changes: Any) -> Episode:
        """A validated copy with ``changes`` to its fields (``dataclasses.replace``) whose actions and observations
        stay those of a ``Discrete`` space when they were (they are stored as floats, which ``replace`` alone would
        read as a Box's)."""
        if self.discrete_actions and "actions" not in changes:
            changes["actions"] = self.actions[:, 0].astype(np.int64)
        if self.discrete_observations and "observations" not in changes:
            changes["observations"] = self.observations[:, 0].astype(np.int64)
        return replace(self, **changes)

    @property
    def map_per_step(self) -> bool:
        """The episode has a map per step (T, H, W) rather than one map."""
        return self.map is not None and self.map.ndim == 3

    @property
    def map_shape(self) -> tuple[int, int] | None:
        """(H, W) of the episode's map(s), or None."""
        return None if self.map is None else (int(self.map.shape[-2]), int(self.map.shape[-1]))

    def map_at(self, t: int) -> np.ndarray | None:
        """The (H, W) map at step ``t`` (the episode's one map when it does not change), or None."""
        if self.map is None:
            return None
        return self.map[t] if self.map_per_step else self.map

    def _validate_final_observation_and_goal(self) -> None:
        if self.final_observation is not None:
            final = _float_array(self.final_observation, "final_observation")
            obs_dim = self.observations.shape[1]
            if final.shape != (obs_dim,):
                raise ValueError(f"final_observation must have shape ({obs_dim},), got {final.shape}")
            _check_finite(final, "final_observation", per_step=False)
            self.final_observation = final
        if self.map is not None:
            grid = np.asarray(self.map)
            if grid.ndim == 3 and len(grid) == len(self.observations) + 1:
                grid = grid[:-1]
            if (
                grid.ndim not in (2, 3)
                or (grid.ndim == 3 and len(grid) != len(self.observations))
                or grid.dtype.kind not in "biu"
                or grid.size == 0
                or int(grid.min()) < 0
            ):
                raise ValueError(
                    f"map must be non-negative integers, one (H, W) map or one per step (T = {len(self.observations)},"
                    f" H, W), got {grid.dtype} {grid.shape}"
                )
            self.map = grid.astype(np.int64)
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
    """Flat observations (T or T+1, O) and the hindsight goal (G,) from array, Dict or Tuple observations (a
    Discrete entry, (T,) or (T + 1,), is one column)."""
    entries = isinstance(observations, tuple) and not isinstance(observation_key, str | None)  # a Tuple space's
    if not (isinstance(observations, Mapping) or entries):
        if isinstance(observation_key, str) or goal_key is not None:
            raise ValueError(
                "observation_key/goal_key are given but the observations are an array, not a Dict observation"
            )
        return np.asarray(observations), None  # with the keys of a Dict or Tuple: flattened already
    keys = (observation_key or "observation",) if isinstance(observation_key, str | None) else tuple(observation_key)
    for role, wanted in [*(("observation_key", k) for k in keys), ("goal_key", goal_key)]:
        if wanted is not None and not has_dict_entry(observations, wanted):
            has = f"available keys: {sorted(observations)}" if not entries else f"it has {len(observations)} entries"
            raise ValueError(f"Dict observations have no key {dict_key_name(wanted)!r} ({role}); {has}")
    goal = None
    if goal_key is not None:
        goal = np.asarray(observations[goal_key])[-1]  # (G,): reached at the episode's final observation
    if len(keys) == 1 and isinstance(keys[0], str) and np.ndim(observations[keys[0]]) != 1:
        return np.asarray(observations[keys[0]]), goal
    scalars = tuple(key for key in keys if np.ndim(dict_entry(observations, key)) == 1)  # a Discrete entry's (T,)
    return flatten_observation(observations, keys, scalars=scalars), goal


def _check_one_reward_per_action(n_actions: int, n_rewards: int) -> None:
    if n_actions != n_rewards:
        raise ValueError(f"actions have {n_actions} steps but rewards have {n_rewards}: one reward per action")


def _terminated_from_flags(terminations: Any) -> bool:
    flags = np.asarray(terminations, dtype=bool).reshape(-1)
    if flags[:-1].any():
        raise ValueError(
            f"terminations is True at step {int(np.argmax(flags))} before the episode's last step "
            f"{len(flags) - 1}; split the data into one episode per terminal"
        )
    return bool(flags[-1]) if len(flags) else False


def _episode_map(observations: Any, map_key: str | None) -> np.ndarray | None:
    """The map the Dict observations hold under ``map_key``: (H, W) when it is the same at every step, else the
    (T, H, W) maps of every step; None without ``map_key``."""
    if map_key is None:
        return None
    if not isinstance(observations, Mapping) or map_key not in observations:
        raise ValueError(f"map_key {map_key!r} is given but the observations have no such Dict entry")
    maps = np.asarray(observations[map_key])
    if maps.ndim != 3:
        raise ValueError(f"the {map_key!r} observations must be (H, W) maps, got {maps.shape[1:]} per step")
    return maps[0] if (maps == maps[:1]).all() else maps


def _episode_from_mapping(
    item: Mapping[str, Any], observation_key: ObservationKey, goal_key: str | None, map_key: str | None = None
) -> Episode:
    missing = {"observations", "actions", "rewards"} - set(item)
    if missing:
        raise ValueError(f"episode dict is missing key(s) {sorted(missing)}; it has {sorted(item)}")
    n_steps = len(np.asarray(item["rewards"]).reshape(-1))
    if np.ndim(item["actions"]) >= 1:  # before the flags, which are counted against the rewards
        _check_one_reward_per_action(len(item["actions"]), n_steps)
    for flags in ("terminations", "truncations"):
        if flags in item and np.asarray(item[flags]).reshape(-1).shape != (n_steps,):
            raise ValueError(
                f"{flags} has {np.asarray(item[flags]).size} flags for {n_steps} steps: give one per step (as Minari "
                f"stores them), or the episode's end as one bool under 'terminated'"
            )
    if "terminated" in item:
        terminated = bool(item["terminated"])
    elif "terminations" in item:
        terminated = _terminated_from_flags(item["terminations"])
    else:
        terminated = False
    observations, goal = _select_observations(item["observations"], observation_key, goal_key)
    grid = _episode_map(item["observations"], map_key)
    return Episode(observations, item["actions"], item["rewards"], terminated, goal=goal, map=grid)


def episodes_from_items(
    items: Iterable[Episode | Mapping[str, Any]],
    observation_key: ObservationKey,
    goal_key: str | None,
    map_key: str | None = None,
) -> list[Episode]:
    """Episodes from :class:`Episode` objects (kept as they are) and episode dicts, in order.

    A ValueError names the episode it comes from (``episode 3: ...``).
    """
    episodes = []
    for index, item in enumerate(items):
        try:
            if isinstance(item, Episode):
                episodes.append(item)
            elif isinstance(item, Mapping):
                episodes.append(_episode_from_mapping(item, observation_key, goal_key, map_key))
            else:
                raise TypeError(f"expected an Episode or a dict, got {type(item).__name__}")
        except ValueError as exc:
            raise ValueError(f"episode {index}: {exc}") from None
    return episodes
