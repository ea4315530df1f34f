"""MiniGrid maps as goal-reaching tasks with Dict observations (paper Appendix F).

:class:`MiniGridGoalEnv` wraps a MiniGrid environment (e.g. ``MiniGrid-MultiRoom-N4-S5-v1``, a new map every
episode) so that it looks like the package's other goal environments:

* ``observation``: the agent's cell and direction ``[x, y, direction]``;
* ``achieved_goal`` / ``desired_goal``: the agent's cell ``[x, y]`` and the goal's cell;
* ``map``, with ``view="map"``: the fully observed map as object types (MiniGrid's ``OBJECT_TO_IDX``: 1 empty, 2
  wall, 4 door, ...), ``(map_size, map_size)`` indexed ``[y, x]``, 0 (unseen) outside the map. As in the appendix,
  neither the agent nor the goal is drawn in it (they are tokens); doors are drawn as doors whether open or not, so
  the map of an episode never changes (a door's state follows from the actions taken);
* ``map``, with ``view="local"``: the cells around the agent, ``(view_size, view_size)`` centred on its cell and
  turned so that the agent faces up (row ``view_size // 2 - 1`` of the centre column is the cell in front of it),
  the same object types with an open door as :data:`OPEN_DOOR_TYPE`, the agent not drawn, the goal drawn as
  :data:`GOAL_TYPE` only with ``goal_in_view=True`` (:func:`draw_goal`), 0 outside the map. It changes with every
  step, like the appendix's "current observation image" (MiniGrid's own view is also
  agent-centred and turned); unlike MiniGrid's, walls do not hide what is behind them, and it reaches behind the
  agent too;
* actions: ``Discrete(4)``, the four MiniGrid actions the tasks need (:data:`ACTIONS`: turn left, turn right,
  forward, toggle a door).

The reward is MiniGrid's (``1 - 0.9 * steps / max_steps`` on reaching the goal, else 0) and ``info["is_success"]``
says whether the goal was reached. :class:`MiniGridGoalExpert` is the scripted shortest-path expert on these
actions, mixed with uniformly random ones (the appendix's data policy).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .minigrid_expert import FORWARD, LEFT, RIGHT, TOGGLE, expert_action

ACTIONS = (LEFT, RIGHT, FORWARD, TOGGLE)
"""MiniGrid's action id of each of the wrapper's four actions."""
GOAL_TYPE, EMPTY_TYPE, DOOR_TYPE = 8, 1, 4
"""MiniGrid's object indices of the goal, of an empty cell and of a door."""
OPEN_DOOR_TYPE = 11
"""An open door's cell in the ``"local"`` view (MiniGrid's object indices end at 10)."""


class MiniGridGoalEnv(gym.Wrapper):
    """A MiniGrid environment as a goal-reaching task (see the module docstring).

    Args:
        env: a MiniGrid environment or its id (made with ``gymnasium.make``).
        map_size: the side of the whole map; maps larger than it are refused at reset.
        view: ``"map"``, the whole map (the same through an episode), or ``"local"``, the cells around the agent.
        view_size: the side of the ``"local"`` view (odd).
        goal_in_view: draw the desired goal's cell in the ``"local"`` view where it lies inside it, as MiniGrid's
            own image shows its goal square (:func:`draw_goal`; data relabelled with other goals must be redrawn
            with the same function).
    """

    def __init__(
        self,
        env: gym.Env | str,
        map_size: int = 25,
        view: str = "map",
        view_size: int = 11,
        goal_in_view: bool = False,
    ) -> None:
        if view not in ("map", "local"):
            raise ValueError(f"view must be 'map' or 'local', got {view!r}")
        if view == "local" and (view_size < 3 or view_size % 2 == 0):
            raise ValueError(f"view_size must be odd and >= 3, got {view_size}")
        if goal_in_view and view != "local":
            raise ValueError("goal_in_view draws the goal in the 'local' view; the 'map' view never shows it")
        if isinstance(env, str):
            import minigrid  # noqa: F401  (registers the MiniGrid-* ids)

            env = gym.make(env)
        if not hasattr(env.unwrapped, "grid"):
            raise TypeError(f"MiniGridGoalEnv wraps MiniGrid environments, got {env.unwrapped!r}")
        super().__init__(env)
        self.map_size, self.view, self.view_size, self.goal_in_view = map_size, view, view_size, goal_in_view
        side = map_size if view == "map" else view_size
        cell = spaces.Box(0.0, float(map_size - 1), (2,), np.float32)
        self.observation_space = spaces.Dict(
            {
                "observation": spaces.Box(
                    np.zeros(3, np.float32), np.array([map_size - 1, map_size - 1, 3], np.float32), dtype=np.float32
                ),
                "achieved_goal": cell,
                "desired_goal": cell,
                "map": spaces.Box(0, 255, (side, side), np.uint8),
            }
        )
        self.action_space = spaces.Discrete(len(ACTIONS))
        self._map = np.zeros((map_size, map_size), np.uint8)
        self._goal = np.zeros(2, np.float32)

    @property
    def full_map(self) -> np.ndarray:
        """(map_size, map_size) the current episode's whole map, as the ``"map"`` view shows it."""
        return self._map.copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        _, info = self.env.reset(seed=seed, options=options)
        base = self.env.unwrapped
        if base.width > self.map_size or base.height > self.map_size:
            raise ValueError(f"the map is {base.width}x{base.height}, larger than map_size {self.map_size}")
        types = base.grid.encode()[..., 0].T  # (H, W) object types, [y, x]
        goal_y, goal_x = np.argwhere(types == GOAL_TYPE)[0]
        types = np.where(types == GOAL_TYPE, EMPTY_TYPE, types)
        self._map = np.zeros((self.map_size, self.map_size), np.uint8)
        self._map[: base.height, : base.width] = types
        self._goal = np.array([goal_x, goal_y], np.float32)
        return self._observation(), info

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        _, reward, terminated, truncated, info = self.env.step(ACTIONS[int(action)])
        info["is_success"] = bool(terminated and reward > 0)
        return self._observation(), float(reward), terminated, truncated, info

    def _observation(self) -> dict[str, np.ndarray]:
        base = self.env.unwrapped
        x, y = (int(v) for v in base.agent_pos)
        observation = np.array([x, y, base.agent_dir], np.float32)
        if self.view == "map":
            view = self._map.copy()
        else:
            view = self._local_view(x, y)
            if self.goal_in_view:
                view = draw_goal(view[None], observation[None], self._goal)[0]
        return {
            "observation": observation,
            "achieved_goal": np.array([x, y], np.float32),
            "desired_goal": self._goal.copy(),
            "map": view,
        }

    def _local_view(self, x: int, y: int) -> np.ndarray:
        """(view_size, view_size) object types around cell (x, y), open doors as :data:`OPEN_DOOR_TYPE`, turned so
        that the agent's direction is up."""
        base = self.env.unwrapped
        types = self._map.copy()  # (map_size, map_size) [y, x], goal not drawn
        state = base.grid.encode()[..., 2].T  # (H, W) a door's state: 0 is open
        grid = types[: base.height, : base.width]  # a view into types
        grid[(grid == DOOR_TYPE) & (state == 0)] = OPEN_DOOR_TYPE
        r = self.view_size // 2
        padded = np.zeros((types.shape[0] + 2 * r, types.shape[1] + 2 * r), np.uint8)
        padded[r : r + types.shape[0], r : r + types.shape[1]] = types
        north_up = padded[y : y + 2 * r + 1, x : x + 2 * r + 1]
        # MiniGrid's directions 0-3 are east, south, west, north; a quarter turn anticlockwise brings east up
        return np.rot90(north_up, k=(int(base.agent_dir) + 1) % 4).copy()


def draw_goal(views: np.ndarray, observations: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """Local views with ``goal``'s cell drawn as :data:`GOAL_TYPE` in each step's view that holds it.

    Args:
        views: (T, V, V) ``"local"`` views (V odd), turned the agent's way as :class:`MiniGridGoalEnv` makes them.
        observations: (T, 3) the agent's ``[x, y, direction]`` at each view's step.
        goal: (2,) the goal cell ``[x, y]``, e.g. a relabelled episode's.

    Returns:
        (T, V, V) a copy of ``views`` with the goal drawn.
    """
    views = np.array(views, dtype=np.uint8, copy=True)
    n, side = views.shape[0], views.shape[-1]
    if views.ndim != 3 or views.shape[1] != side or side % 2 == 0:
        raise ValueError(f"views must be (T, V, V) with V odd, got {views.shape}")
    if observations.shape != (n, 3):
        raise ValueError(f"observations must be ({n}, 3) [x, y, direction], got {observations.shape}")
    r = side // 2
    dx = int(goal[0]) - observations[:, 0].astype(np.int64)  # (T,)
    dy = int(goal[1]) - observations[:, 1].astype(np.int64)  # (T,)
    row, col = r + dy, r + dx  # (T,) the goal's cell in the north-up view
    inside = (np.abs(dx) <= r) & (np.abs(dy) <= r)  # (T,)
    turns = (observations[:, 2].astype(np.int64) + 1) % 4  # (T,) quarter turns anticlockwise, as the env's rot90
    for done in range(3):  # one turn moves cell (i, j) to (V - 1 - j, i)
        turn = turns > done  # (T,)
        row, col = np.where(turn, side - 1 - col, row), np.where(turn, row, col)
    views[np.flatnonzero(inside), row[inside], col[inside]] = GOAL_TYPE
    return views


class MiniGridGoalExpert:
    """The shortest-path expert of a :class:`MiniGridGoalEnv`'s current map on the wrapper's actions, replaced by a
    uniformly random action with probability ``random_fraction`` (a policy for
    :func:`tt_agents.data_making.record_dataset`: ``expert(observation) -> action``)."""

    def __init__(self, env: MiniGridGoalEnv, random_fraction: float = 0.0, seed: int = 0) -> None:
        self.env = env
        self.random_fraction = random_fraction
        self._rng = np.random.default_rng(seed)

    @property
    def random_fraction(self) -> float:
        return self._random_fraction

    @random_fraction.setter
    def random_fraction(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"random_fraction must be in [0, 1], got {value}")
        self._random_fraction = float(value)

    def __call__(self, observation: dict[str, np.ndarray]) -> int:
        if self._rng.random() < self.random_fraction:
            return int(self._rng.integers(len(ACTIONS)))
        action = expert_action(self.env)
        return ACTIONS.index(action) if action in ACTIONS else ACTIONS.index(FORWARD)
