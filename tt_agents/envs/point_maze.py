"""PointMaze datasets made locally, the D4RL ``maze2d`` / Minari ``D4RL/pointmaze`` way.

gymnasium-robotics' ``PointMaze_UMaze-v3``, ``PointMaze_Medium-v3`` and ``PointMaze_Large-v3`` (:data:`MAZES`) are
a force-actuated ball in a maze of unit cells: Dict observations ``observation`` (x, y, vx, vy),
``achieved_goal`` (x, y) and ``desired_goal`` (x, y), actions in ``[-1, 1]^2`` and the sparse reward 1 within
0.45 of the goal.

* :class:`WaypointController` is the scripted expert: a breadth-first shortest path over the maze's free cells
  from the ball's cell to the goal's, a PD controller (D4RL's gains: 10 on the position error, -1 on the
  velocity) towards the centre of the next cell on it, or towards the goal itself once the next cell is the
  goal's, and Gaussian action noise.
* :func:`make_point_maze_dataset` records it with :func:`tt_agents.data_making.record_dataset` as D4RL and Minari
  did: in the continuing task whose goal is re-sampled whenever the ball reaches it
  (``continuing_task=True, reset_target=True``), with action noise of std 0.5, for a total step budget (D4RL's
  1M / 2M / 4M steps with ``preset="paper"``, a tenth of that or less with ``preset="cpu"``), cut into
  episodes of the environment's time limit. The dataset keeps the Dict observations and stores the evaluation
  environment (:func:`point_maze_env`: ``continuing_task=True, reset_target=False``, the standard time limit;
  rebuild it with ``dataset.recover_environment(eval_env=True)``) and reference scores measured on it: the
  mean return of uniformly random actions (``ref_min_score``) and of the noise-free controller
  (``ref_max_score``), so ``minari.get_normalized_score`` works offline.

Two tasks (``goal=``):

* ``"random"`` (maze2d / Minari pointmaze): every evaluation episode samples a new goal, the desired goal is part
  of the observation and the data's rewards are for the goal the controller was sent to. A goal-conditioned task.
* ``"fixed"`` (the paper's AntMaze setting, Table 2): one goal cell per maze (D4RL maze2d's, :data:`FIXED_GOAL_CELLS`).
  The data is recorded as before, the controller sent to random goals, but :class:`FixedGoalTask` relabels the
  desired goal and the sparse reward for the fixed goal, as D4RL did for AntMaze; the evaluation episode starts
  anywhere and ends on reaching that goal (``continuing_task=False``), so the return is 1 on success and 0 otherwise.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

import gymnasium as gym
import gymnasium_robotics
import minari
import numpy as np
from minari.storage import get_dataset_path
from rich.console import Console

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
PRESET_STEPS: dict[str, dict[str, int]] = {
    "paper": {"umaze": 1_000_000, "medium": 2_000_000, "large": 4_000_000},
    "cpu": {"umaze": 100_000, "medium": 150_000, "large": 200_000},
}
"""Total dataset steps per preset and maze: ``paper`` is D4RL's maze2d sizes; ``cpu`` records each maze in under a
minute on one CPU core (about 5k steps/s, plus 4-10 s for the reference scores)."""
DEFAULT_NOISE = 0.5
"""Std of the controller's Gaussian action noise in the datasets (D4RL's and Minari's)."""
P_GAIN, D_GAIN = 10.0, -1.0
"""D4RL's PD gains: ``action = P_GAIN * (waypoint - position) + D_GAIN * velocity``."""
REFERENCE_EPISODES = 100
"""Evaluation episodes behind each reference score (as Minari's default)."""
REFERENCE_SEED = 1_000_000
"""Reset seed of the first reference episode (the others follow it), far from the recording's seeds."""

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


def point_maze_dataset_id(maze: str, goal: str = "random") -> str:
    """The default Minari id of a maze's dataset: ``"medium"`` → ``"tt-agents/pointmaze/medium-v0"``, and
    ``("medium", goal="fixed")`` → ``"tt-agents/pointmaze/medium-fixed-goal-v0"``."""
    suffix = "-fixed-goal" if resolve_goal(goal) == "fixed" else ""
    return f"tt-agents/pointmaze/{resolve_maze(maze)}{suffix}-v0"


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
        return self._relabel(observation, info)

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        observation, _, terminated, truncated, info = self.env.step(action)
        observation, info = self._relabel(observation, info)
        return observation, float(info["success"]), terminated, truncated, info

    def _relabel(
        self, observation: dict[str, np.ndarray], info: dict[str, Any]
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        self.commanded_goal = np.array(observation["desired_goal"], dtype=np.float64)
        desired = self.fixed_goal.astype(observation["desired_goal"].dtype)
        success = bool(np.linalg.norm(observation["achieved_goal"] - self.fixed_goal) <= GOAL_RADIUS)
        return {**observation, "desired_goal": desired}, {**info, "success": success}

    def controller_policy(self, controller: WaypointController) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
        """``controller`` steering to the commanded goal while it sees the relabelled observations."""
        return lambda observation: controller({**observation, "desired_goal": self.commanded_goal})


# ---------------------------------------------------------------------------------------------- datasets


def episode_returns(
    env: gym.Env, policy: Callable[[dict[str, np.ndarray]], np.ndarray] | None, n_episodes: int, seed: int = 0
) -> np.ndarray:
    """(n_episodes,) returns of ``policy`` (``None``: uniformly random actions, seeded ``seed``) in ``env``, reset
    with seeds ``REFERENCE_SEED + i``."""
    env.action_space.seed(seed)
    returns = np.zeros(n_episodes)
    for episode in range(n_episodes):
        observation, _ = env.reset(seed=REFERENCE_SEED + episode)
        done = False
        while not done:
            action = env.action_space.sample() if policy is None else policy(observation)
            observation, reward, terminated, truncated, _ = env.step(action)
            returns[episode] += float(reward)
            done = terminated or truncated
    return returns


def reference_scores(maze: str, n_episodes: int = REFERENCE_EPISODES, goal: str = "random") -> tuple[float, float]:
    """(``ref_min_score``, ``ref_max_score``): mean returns of uniformly random actions and of the noise-free
    :class:`WaypointController` over the same ``n_episodes`` resets of the evaluation environment
    (:func:`point_maze_env` with ``goal``)."""
    env = point_maze_env(maze, goal)
    try:
        random_returns = episode_returns(env, None, n_episodes)
        expert_returns = episode_returns(env, WaypointController(env), n_episodes)
    finally:
        env.close()
    return float(random_returns.mean()), float(expert_returns.mean())


def make_point_maze_dataset(
    maze: str,
    n_steps: int | None = None,
    *,
    goal: Literal["random", "fixed"] = "random",
    preset: Literal["cpu", "paper"] = "cpu",
    noise: float = DEFAULT_NOISE,
    episode_steps: int | None = None,
    reference_episodes: int = REFERENCE_EPISODES,
    seed: int = 0,
    dataset_id: str | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> minari.MinariDataset:
    """Record the noisy :class:`WaypointController` in a PointMaze as a local Minari dataset (D4RL maze2d style).

    The environment is the continuing task whose goal is re-sampled each time the ball reaches it
    (``continuing_task=True, reset_target=True``), so one episode visits many goals; episodes are truncated
    after ``episode_steps`` and the ball and goal reset. Rewards are the sparse 1-within-0.45-of-the-goal:
    of the goal the controller is sent to (``goal="random"``), or of the maze's fixed goal
    (``goal="fixed"``: :class:`FixedGoalTask` relabels the desired goal and the reward, AntMaze-style).

    Args:
        maze: ``"umaze"``, ``"medium"``, ``"large"`` or a gymnasium-robotics id (:func:`resolve_maze`).
        goal: ``"random"`` (goal-conditioned, maze2d style) or ``"fixed"`` (one goal per maze, the paper's
            AntMaze setting); also picks the evaluation environment (:func:`point_maze_env`).
        n_steps: total steps to record (default: the preset's, :data:`PRESET_STEPS`).
        preset: ``"paper"``: D4RL's 1M / 2M / 4M steps; ``"cpu"``: 100k / 150k / 200k (under a minute each).
        noise: std of the Gaussian action noise.
        episode_steps: episode length (default: the maze's time limit, 300 / 600 / 800).
        reference_episodes: evaluation episodes behind each reference score (:func:`reference_scores`).
        seed: seed of the environment resets and the noise.
        dataset_id: default :func:`point_maze_dataset_id`, e.g. ``"tt-agents/pointmaze/medium-v0"`` or
            ``"tt-agents/pointmaze/medium-fixed-goal-v0"``.
        overwrite: replace an existing dataset with the same id (otherwise a ``FileExistsError``).
        show_progress: a progress bar and a one-line summary of the written dataset.

    Returns:
        The dataset (Dict observations as recorded), with ``ref_min_score``, ``ref_max_score`` and the
        evaluation environment (:func:`point_maze_env`) in its metadata.
    """
    from tt_agents.data_making import record_dataset, summarize_dataset

    maze = resolve_maze(maze)
    goal = resolve_goal(goal)
    if preset not in PRESET_STEPS:
        raise ValueError(f"preset must be one of {sorted(PRESET_STEPS)}, got {preset!r}")
    if reference_episodes < 1:
        raise ValueError(f"reference_episodes must be >= 1, got {reference_episodes}")
    n_steps = n_steps if n_steps is not None else PRESET_STEPS[preset][maze]
    dataset_id = dataset_id or point_maze_dataset_id(maze, goal)
    if not overwrite and get_dataset_path(dataset_id).exists():  # before spending time on the reference scores
        raise FileExistsError(f"Minari dataset {dataset_id!r} already exists; pass overwrite=True to replace it")
    ref_min, ref_max = reference_scores(maze, reference_episodes, goal)
    eval_env = point_maze_env(maze, goal)
    env = point_maze_env(
        maze, reset_target=True, **({} if episode_steps is None else {"max_episode_steps": episode_steps})
    )
    controller = WaypointController(env, noise=noise, seed=seed)
    policy: Callable[[dict[str, np.ndarray]], np.ndarray] = controller
    if goal == "fixed":
        env = FixedGoalTask(env, FIXED_GOAL_CELLS[maze])
        policy = env.controller_policy(controller)
        task = (
            f"with the desired goal and the sparse reward relabelled for the fixed goal cell {FIXED_GOAL_CELLS[maze]} "
            "(AntMaze-style); evaluation episodes start anywhere and end on reaching that goal"
        )
        evaluation = "continuing_task=False"
    else:
        task = "with the rewards of the goals it was sent to"
        evaluation = "continuing_task=True, reset_target=False"
    try:
        dataset = record_dataset(
            env,
            policy,
            dataset_id,
            n_steps=n_steps,
            seed=seed,
            ref_min_score=ref_min,
            ref_max_score=ref_max,
            eval_env=eval_env.spec,
            algorithm_name="WaypointController (BFS over maze cells + PD, D4RL gains)",
            description=(
                f"D4RL maze2d-style dataset for {MAZES[maze]}: the scripted waypoint controller with Gaussian "
                f"action noise std {noise} in the continuing task with goals re-sampled on reaching them "
                f"(continuing_task=True, reset_target=True), {task}; episodes of {env.spec.max_episode_steps} "
                f"steps, {n_steps} steps in all, seed {seed}. Reference scores: mean returns of uniformly random "
                f"actions and of the noise-free controller over {reference_episodes} episodes of the evaluation "
                f"environment ({evaluation}, standard time limit)."
            ),
            overwrite=overwrite,
            show_progress=show_progress,
        )
    finally:
        env.close()
        eval_env.close()
    dataset.storage.update_metadata({"num_episodes_average_score": reference_episodes})
    if show_progress:
        summary = summarize_dataset(dataset)
        if goal == "fixed":  # continuing recordings against the episodic task's references: no meaningful score
            summary = replace(summary, normalized_score=None)
        Console().print(str(summary))
    return dataset
