"""PointMaze tasks and their scripted expert, the D4RL ``maze2d`` / Minari ``D4RL/pointmaze`` way.

gymnasium-robotics' ``PointMaze_UMaze-v3``, ``PointMaze_Medium-v3`` and ``PointMaze_Large-v3`` (:data:`MAZES`) are
a force-actuated ball in a maze of unit cells: Dict observations ``observation`` (x, y, vx, vy),
``achieved_goal`` (x, y) and ``desired_goal`` (x, y), actions in ``[-1, 1]^2`` and the sparse reward 1 within
0.45 of the goal.

* :class:`WaypointController` is the scripted expert: a breadth-first shortest path over the maze's free cells
  from the ball's cell to the goal's, a PD controller (D4RL's gains: 10 on the position error, -1 on the
  velocity) towards the centre of the next cell on it, or towards the goal itself once the next cell is the
  goal's, and Gaussian action noise.
* :func:`point_maze_env` is the evaluation environment of a maze, for one of two tasks (``goal=``):

  * ``"random"`` (maze2d / Minari pointmaze): every episode samples a new goal, the desired goal is part of the
    observation (``continuing_task=True, reset_target=False``, the standard time limit). A goal-conditioned task.
  * ``"fixed"`` (the paper's AntMaze setting, Table 2): one goal cell per maze (D4RL maze2d's,
    :data:`FIXED_GOAL_CELLS`); the episode starts anywhere and ends on reaching that goal
    (``continuing_task=False``), so the return is 1 on success and 0 otherwise.

* :class:`FixedGoalTask` turns a random-goal maze into the fixed-goal task while a controller is still sent to
  random goals, as D4RL labelled its AntMaze data.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import gymnasium_robotics
import numpy as np

gym.register_envs(gymnasium_robotics)

MAZES: dict[str, str] = {
    "umaze": "PointMaze_UMaze-v3",
    "medium": "PointMaze_Medium-v3",
    "large": "PointMaze_Large-v3",
}
"""Short maze names and their gymnasium-robotics ids (time limits 300, 600 and 800 steps)."""
FIXED_GOAL_CELLS: dict[str, tuple[int, int]] = {"umaze": (1, 1), "medium": (6, 6), "large": (7, 9)}
"""(row, column) of the goal of the ``"fixed"`` task per maze: the ``G`` of D4RL's maze2d maps (same layouts)."""
GOALS = ("random", "fixed")
"""The two tasks: a new goal every episode (goal-conditioned), or one goal per maze (AntMaze-style)."""
GOAL_RADIUS = 0.45
"""Distance to the goal within which PointMaze pays its sparse reward and reports success."""
P_GAIN, D_GAIN = 10.0, -1.0
"""D4RL's PD gains: ``action = P_GAIN * (waypoint - position) + D_GAIN * velocity``."""

Cell = tuple[int, int]
_NEIGHBOURS: tuple[Cell, ...] = ((-1, 0), (1, 0), (0, -1), (0, 1))


def resolve_maze(maze: str) -> str:
    """The short name in :data:`MAZES` of ``maze``: a short name (any case) or a gymnasium-robotics id."""
    key = maze.lower().replace("-", "").replace("_", "")
    for name, env_id in MAZES.items():
        if key in (name, env_id.lower().replace("-", "").replace("_", "")):
            return name
    raise ValueError(f"unknown maze {maze!r}; give one of {sorted(MAZES)} or {sorted(MAZES.values())}")


def resolve_goal(goal: str) -> str:
    """``goal`` checked against :data:`GOALS`."""
    if goal not in GOALS:
        raise ValueError(f"goal must be one of {GOALS}, got {goal!r}")
    return goal


def fixed_goal_map(maze: str) -> list[list[int | str]]:
    """The maze's map with its fixed goal cell (:data:`FIXED_GOAL_CELLS`) marked ``"g"``."""
    maze = resolve_maze(maze)
    grid: list[list[int | str]] = [list(row) for row in gym.spec(MAZES[maze]).kwargs["maze_map"]]
    row, column = FIXED_GOAL_CELLS[maze]
    grid[row][column] = "g"
    return grid


def point_maze_env(maze: str, goal: str = "random", **kwargs: Any) -> gym.Env:
    """The evaluation environment of a maze.

    ``goal="random"``: ``gymnasium.make(MAZES[maze], continuing_task=True, reset_target=False)``. Every reset
    samples a start and a goal; the episode runs for the standard time limit and earns reward 1 at every step
    the ball is within 0.45 of the goal (``info["success"]``).

    ``goal="fixed"``: the goal is always in the maze's :data:`FIXED_GOAL_CELLS` cell (with PointMaze's position
    noise), the start anywhere else, and the episode ends with reward 1 on reaching it (``continuing_task=False``).

    ``kwargs`` go to ``gymnasium.make`` and override these settings (e.g. ``max_episode_steps=...``).
    """
    maze = resolve_maze(maze)
    if resolve_goal(goal) == "fixed":
        settings: dict[str, Any] = {"maze_map": fixed_goal_map(maze), "continuing_task": False, "reset_target": False}
    else:
        settings = {"continuing_task": True, "reset_target": False}
    return gym.make(MAZES[maze], **{**settings, **kwargs})


# ---------------------------------------------------------------------------------------------- controller


def cell_distances(maze_map: list[list[Any]], goal: Cell) -> np.ndarray:
    """Steps from every cell to ``goal`` moving between free cells that share a side (breadth-first search).

    Args:
        maze_map: rows of cells; ``1`` is a wall, anything else is free.
        goal: (row, column) of a free cell.

    Returns:
        (rows, columns) float array; ``inf`` for walls and for cells that cannot reach ``goal``.
    """
    free = np.array([[cell != 1 for cell in row] for row in maze_map])  # (rows, columns) bool
    if not free[goal]:
        raise ValueError(f"goal cell {goal} is a wall")
    distances = np.full(free.shape, np.inf)
    distances[goal] = 0.0
    queue = deque([goal])
    while queue:
        row, column = queue.popleft()
        for dr, dc in _NEIGHBOURS:
            cell = (row + dr, column + dc)
            if free[cell] and distances[cell] == np.inf:  # the maze's border is walls: indices stay inside
                distances[cell] = distances[row, column] + 1.0
                queue.append(cell)
    return distances


def next_cell(distances: np.ndarray, cell: Cell) -> Cell:
    """The neighbour of ``cell`` one step closer to the goal of ``distances`` (``cell`` itself at the goal)."""
    if distances[cell] == np.inf:
        raise ValueError(f"cell {cell} is a wall or cannot reach the goal")
    if distances[cell] == 0.0:
        return cell
    row, column = cell
    return next((row + dr, column + dc) for dr, dc in _NEIGHBOURS if distances[row + dr, column + dc] < distances[cell])


def shortest_path(maze_map: list[list[Any]], start: Cell, goal: Cell) -> list[Cell]:
    """The cells of a shortest path from ``start`` to ``goal`` through free cells sharing a side, both included."""
    distances = cell_distances(maze_map, goal)
    path = [start]
    while path[-1] != goal:
        path.append(next_cell(distances, path[-1]))
    return path


class WaypointController:
    """Scripted PointMaze expert: ``action = controller(observation)``.

    Stateless: every call finds the ball's cell and the goal's, takes the next cell on a shortest path between
    them (:func:`next_cell`; one breadth-first search per goal cell, cached) and steers to that cell's centre,
    or to the goal itself when that cell is the goal's (or the ball is in it), with
    ``p_gain * (waypoint - position) + d_gain * velocity``. Two cells sharing a side form a rectangle of free
    space, so the straight line to the waypoint never cuts a wall's corner. Goals re-sampled mid-episode
    (``reset_target=True``) are followed at once. Gaussian noise of std ``noise`` is added before clipping to
    ``[-1, 1]``.

    Args:
        env: a PointMaze environment (any wrapper around one).
        noise: std of the Gaussian noise on each action component.
        seed: seed of the noise.
        p_gain: gain on the position error.
        d_gain: gain on the velocity.
    """

    def __init__(
        self, env: gym.Env, noise: float = 0.0, seed: int = 0, p_gain: float = P_GAIN, d_gain: float = D_GAIN
    ) -> None:
        maze = getattr(env.unwrapped, "maze", None)
        if maze is None:
            raise TypeError(f"WaypointController needs a PointMaze environment, got {type(env.unwrapped).__name__}")
        if noise < 0.0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        self.maze = maze
        self.noise, self.p_gain, self.d_gain = float(noise), float(p_gain), float(d_gain)
        self._rng = np.random.default_rng(seed)
        self._distances: dict[Cell, np.ndarray] = {}

    def cell(self, xy: np.ndarray) -> Cell:
        """The (row, column) of the cell holding the point ``xy``."""
        row, column = self.maze.cell_xy_to_rowcol(xy)
        return int(row), int(column)

    def waypoint(self, position: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """The point the controller steers to: the next cell's centre, or ``goal`` when that is the goal's cell."""
        goal_cell = self.cell(goal)
        if goal_cell not in self._distances:
            self._distances[goal_cell] = cell_distances(self.maze.maze_map, goal_cell)
        step = next_cell(self._distances[goal_cell], self.cell(position))
        return np.asarray(goal, dtype=np.float64) if step == goal_cell else self.maze.cell_rowcol_to_xy(step)

    def __call__(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """The action (float32, shape ``(2,)``, in ``[-1, 1]``) for a PointMaze observation dict."""
        state = np.asarray(observation["observation"], dtype=np.float64)  # (4,) x, y, vx, vy
        position, velocity = state[:2], state[2:]
        action = self.p_gain * (self.waypoint(position, observation["desired_goal"]) - position)
        action = action + self.d_gain * velocity
        if self.noise > 0.0:
            action = action + self._rng.normal(0.0, self.noise, size=2)
        return np.clip(action, -1.0, 1.0).astype(np.float32)


class FixedGoalTask(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Relabels a random-goal PointMaze for one fixed goal cell, the way D4RL's AntMaze data was labelled.

    The wrapped environment keeps its own (commanded) goal, re-sampled on reaching it; a controller steering
    to it reads :attr:`commanded_goal`. What the wrapper returns is the fixed-goal task: the observation's
    ``desired_goal`` is the fixed goal (the cell's centre plus PointMaze's position noise, drawn at every
    reset), the reward is 1 where the ball is within :data:`GOAL_RADIUS` of it, and ``info["success"]`` says
    so. The wrapped task never terminates (``continuing_task=True``), so the ball passes through the goal and
    leaves it again, as the AntMaze data does.

    Args:
        env: a PointMaze environment (any wrapper around one).
        goal_cell: (row, column) of the fixed goal; a free cell of the maze.
    """

    def __init__(self, env: gym.Env, goal_cell: tuple[int, int]) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, goal_cell=tuple(goal_cell))
        gym.Wrapper.__init__(self, env)
        maze = getattr(env.unwrapped, "maze", None)
        if maze is None:
            raise TypeError(f"FixedGoalTask needs a PointMaze environment, got {type(env.unwrapped).__name__}")
        row, column = goal_cell
        if maze.maze_map[row][column] == 1:
            raise ValueError(f"goal cell {tuple(goal_cell)} is a wall")
        self.goal_cell = (int(row), int(column))
        self._goal_centre = maze.cell_rowcol_to_xy(np.array(self.goal_cell)).astype(np.float64)  # (2,)
        self.fixed_goal = self._goal_centre.copy()
        self.commanded_goal = self._goal_centre.copy()

    def reset(self, **kwargs: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        observation, info = self.env.reset(**kwargs)
        self.fixed_goal = self.env.unwrapped.add_xy_position_noise(self._goal_centre.copy())
        return self._with_fixed_goal(observation, info)

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        observation, _, terminated, truncated, info = self.env.step(action)
        observation, info = self._with_fixed_goal(observation, info)
        return observation, float(info["success"]), terminated, truncated, info

    def _with_fixed_goal(
        self, observation: dict[str, np.ndarray], info: dict[str, Any]
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The observation with the fixed goal as ``desired_goal`` and ``info["success"]`` for that goal; the
        wrapped environment's own goal is kept in :attr:`commanded_goal`."""
        self.commanded_goal = np.array(observation["desired_goal"], dtype=np.float64)
        desired = self.fixed_goal.astype(observation["desired_goal"].dtype)
        success = bool(np.linalg.norm(observation["achieved_goal"] - self.fixed_goal) <= GOAL_RADIUS)
        return {**observation, "desired_goal": desired}, {**info, "success": success}

    def controller_policy(self, controller: WaypointController) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
        """``controller`` steering to the commanded goal while it sees the relabelled observations."""
        return lambda observation: controller({**observation, "desired_goal": self.commanded_goal})
