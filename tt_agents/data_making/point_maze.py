"""PointMaze datasets made locally, the D4RL ``maze2d`` / Minari ``D4RL/pointmaze`` way.

:func:`make_point_maze_dataset` records the scripted :class:`~tt_agents.envs.point_maze.WaypointController` with
:func:`~tt_agents.data_making.recording.record_dataset` as D4RL and Minari did: in the continuing task whose goal
is re-sampled whenever the ball reaches it (``continuing_task=True, reset_target=True``), with action noise of
std 0.5, for a total step budget (D4RL's 1M / 2M / 4M steps with ``preset="paper"``, a tenth of that or less with
``preset="cpu"``), cut into episodes of the environment's time limit. The dataset keeps the Dict observations and
stores the evaluation environment (:func:`~tt_agents.envs.point_maze.point_maze_env`; rebuild it with
``dataset.recover_environment(eval_env=True)``) and reference scores measured on it: the mean return of uniformly
random actions (``ref_min_score``) and of the noise-free controller (``ref_max_score``), so
``minari.get_normalized_score`` works offline.

With ``goal="fixed"`` the controller is still sent to random goals, but
:class:`~tt_agents.envs.point_maze.FixedGoalTask` labels the desired goal and the sparse reward for the maze's
fixed goal, as D4RL did for AntMaze.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Literal

import gymnasium as gym
import minari
import numpy as np
from rich.console import Console

from ..envs.point_maze import (
    FIXED_GOAL_CELLS,
    MAZES,
    FixedGoalTask,
    WaypointController,
    point_maze_env,
    resolve_goal,
    resolve_maze,
)
from .recording import check_dataset_id, record_dataset, summarize_dataset

MazePolicy = Callable[[dict[str, np.ndarray]], np.ndarray]

PRESET_STEPS: dict[str, dict[str, int]] = {
    "paper": {"umaze": 1_000_000, "medium": 2_000_000, "large": 4_000_000},
    "cpu": {"umaze": 100_000, "medium": 150_000, "large": 200_000},
}
"""Total dataset steps per preset and maze: ``paper`` is D4RL's maze2d sizes; ``cpu`` is sized for one CPU core."""
DEFAULT_NOISE = 0.5
"""Std of the controller's Gaussian action noise in the datasets (D4RL's and Minari's)."""
REFERENCE_EPISODES = 100
"""Evaluation episodes behind each reference score (as Minari's default)."""
REFERENCE_SEED = 1_000_000
"""Reset seed of the first reference episode (the others follow it), far from the recording's seeds."""


def point_maze_dataset_id(maze: str, goal: str = "random") -> str:
    """The default Minari id of a maze's dataset: ``"medium"`` → ``"tt-agents/pointmaze/medium-v0"``, and
    ``("medium", goal="fixed")`` → ``"tt-agents/pointmaze/medium-fixed-goal-v0"``."""
    suffix = "-fixed-goal" if resolve_goal(goal) == "fixed" else ""
    return f"tt-agents/pointmaze/{resolve_maze(maze)}{suffix}-v0"


def episode_returns(env: gym.Env, policy: MazePolicy | None, n_episodes: int, seed: int = 0) -> np.ndarray:
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
    :class:`~tt_agents.envs.point_maze.WaypointController` over the same ``n_episodes`` resets of the evaluation
    environment (:func:`~tt_agents.envs.point_maze.point_maze_env` with ``goal``)."""
    env = point_maze_env(maze, goal)
    try:
        random_returns = episode_returns(env, None, n_episodes)
        expert_returns = episode_returns(env, WaypointController(env), n_episodes)
    finally:
        env.close()
    return float(random_returns.mean()), float(expert_returns.mean())


def _recording_task(
    maze: str, goal: str, noise: float, seed: int, episode_steps: int | None
) -> tuple[gym.Env, MazePolicy, str, str]:
    """The recording environment, the noisy controller in it, and phrases describing the task and its
    evaluation environment."""
    env = point_maze_env(
        maze, reset_target=True, **({} if episode_steps is None else {"max_episode_steps": episode_steps})
    )
    controller = WaypointController(env, noise=noise, seed=seed)
    if goal != "fixed":
        task = "with the rewards of the goals it was sent to"
        return env, controller, task, "continuing_task=True, reset_target=False"
    task_env = FixedGoalTask(env, FIXED_GOAL_CELLS[maze])
    task = (
        f"with the desired goal and the sparse reward relabelled for the fixed goal cell {FIXED_GOAL_CELLS[maze]} "
        "(AntMaze-style); evaluation episodes start anywhere and end on reaching that goal"
    )
    return task_env, task_env.controller_policy(controller), task, "continuing_task=False"


def _total_steps(maze: str, n_steps: int | None, preset: str) -> int:
    """``n_steps``, or the preset's total for ``maze`` when it is ``None`` (a ValueError for an unknown preset)."""
    if preset not in PRESET_STEPS:
        raise ValueError(f"preset must be one of {sorted(PRESET_STEPS)}, got {preset!r}")
    return n_steps if n_steps is not None else PRESET_STEPS[preset][maze]


def _dataset_description(
    maze: str,
    env: gym.Env,
    task: str,
    evaluation: str,
    *,
    noise: float,
    n_steps: int,
    seed: int,
    reference_episodes: int,
) -> str:
    """The dataset's description: how it was recorded in ``env`` and how its reference scores were measured."""
    return (
        f"D4RL maze2d-style dataset for {MAZES[maze]}: the scripted waypoint controller with Gaussian "
        f"action noise std {noise} in the continuing task with goals re-sampled on reaching them "
        f"(continuing_task=True, reset_target=True), {task}; episodes of {env.spec.max_episode_steps} "
        f"steps, {n_steps} steps in all, seed {seed}. Reference scores: mean returns of uniformly random "
        f"actions and of the noise-free controller over {reference_episodes} episodes of the evaluation "
        f"environment ({evaluation}, standard time limit)."
    )


def _print_summary(dataset: minari.MinariDataset, goal: str) -> None:
    """Print a one-line summary of the written dataset."""
    summary = summarize_dataset(dataset)
    if goal == "fixed":  # continuing recordings against the episodic task's references: no meaningful score
        summary = replace(summary, normalized_score=None)
    Console().print(str(summary))


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
    """Record the noisy waypoint controller in a PointMaze as a local Minari dataset (D4RL maze2d style).

    The environment is the continuing task whose goal is re-sampled each time the ball reaches it
    (``continuing_task=True, reset_target=True``), so one episode visits many goals; episodes are truncated
    after ``episode_steps`` and the ball and goal reset. Rewards are the sparse 1-within-0.45-of-the-goal:
    of the goal the controller is sent to (``goal="random"``), or of the maze's fixed goal
    (``goal="fixed"``: :class:`~tt_agents.envs.point_maze.FixedGoalTask` relabels the desired goal and the reward,
    AntMaze-style).

    Args:
        maze: ``"umaze"``, ``"medium"``, ``"large"`` or a gymnasium-robotics id
            (:func:`~tt_agents.envs.point_maze.resolve_maze`).
        goal: ``"random"`` (goal-conditioned, maze2d style) or ``"fixed"`` (one goal per maze, the paper's
            AntMaze setting); also picks the evaluation environment
            (:func:`~tt_agents.envs.point_maze.point_maze_env`).
        n_steps: total steps to record (default: the preset's, :data:`PRESET_STEPS`).
        preset: ``"paper"``: D4RL's 1M / 2M / 4M steps; ``"cpu"``: 100k / 150k / 200k.
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
        evaluation environment in its metadata.
    """
    maze, goal = resolve_maze(maze), resolve_goal(goal)
    n_steps = _total_steps(maze, n_steps, preset)
    if reference_episodes < 1:
        raise ValueError(f"reference_episodes must be >= 1, got {reference_episodes}")
    dataset_id = dataset_id or point_maze_dataset_id(maze, goal)
    check_dataset_id(dataset_id, overwrite)  # before spending time on the reference scores
    ref_min, ref_max = reference_scores(maze, reference_episodes, goal)
    eval_env = point_maze_env(maze, goal)
    env, policy, task, evaluation = _recording_task(maze, goal, noise, seed, episode_steps)
    try:
        description = _dataset_description(
            maze, env, task, evaluation, noise=noise, n_steps=n_steps, seed=seed, reference_episodes=reference_episodes
        )
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
            description=description,
            overwrite=overwrite,
            show_progress=show_progress,
        )
    finally:
        env.close()
        eval_env.close()
    dataset.storage.update_metadata({"num_episodes_average_score": reference_episodes})
    if show_progress:
        _print_summary(dataset, goal)
    return dataset
