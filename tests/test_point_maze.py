"""Tests of tt_agents.envs.point_maze (maze paths, the scripted waypoint controller, the fixed-goal task) and of
tt_agents.data_making.point_maze (the local datasets)."""

from __future__ import annotations

import json

import gymnasium as gym
import minari
import numpy as np
import pytest

from tt_agents.data_loading import load_episodes
from tt_agents.data_making.point_maze import make_point_maze_dataset, point_maze_dataset_id, reference_scores
from tt_agents.envs.point_maze import (
    FIXED_GOAL_CELLS,
    MAZES,
    FixedGoalTask,
    WaypointController,
    cell_distances,
    point_maze_env,
    resolve_maze,
    shortest_path,
)


@pytest.fixture(autouse=True)
def minari_home(tmp_path, monkeypatch):
    """A private, offline Minari datasets directory for every test."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "datasets"


def maze_map(maze: str) -> list[list]:
    env = point_maze_env(maze)
    try:
        return env.unwrapped.maze.maze_map
    finally:
        env.close()


def test_maze_names_and_ids():
    assert resolve_maze("UMaze") == resolve_maze("u_maze") == resolve_maze("PointMaze_UMaze-v3") == "umaze"
    assert resolve_maze("Large") == "large"
    assert point_maze_dataset_id("PointMaze_Medium-v3") == "tt-agents/pointmaze/medium-v0"
    with pytest.raises(ValueError, match="unknown maze"):
        resolve_maze("open")


def test_point_maze_env_is_the_evaluation_task():
    env = point_maze_env("umaze")
    try:
        assert env.spec.id == MAZES["umaze"] and env.spec.max_episode_steps == 300
        assert env.spec.kwargs["continuing_task"] and not env.spec.kwargs["reset_target"]
        assert set(env.observation_space.spaces) == {"observation", "achieved_goal", "desired_goal"}
    finally:
        env.close()


def test_shortest_path_in_umaze():
    assert shortest_path(maze_map("umaze"), (1, 1), (3, 1)) == [(1, 1), (1, 2), (1, 3), (2, 3), (3, 3), (3, 2), (3, 1)]
    with pytest.raises(ValueError, match="wall"):
        shortest_path(maze_map("umaze"), (1, 1), (2, 1))


@pytest.mark.parametrize("maze", sorted(MAZES))
def test_shortest_paths_never_pass_through_walls(maze):
    grid = maze_map(maze)
    free = [(r, c) for r, row in enumerate(grid) for c, cell in enumerate(row) if cell != 1]
    for goal in free:
        distances = cell_distances(grid, goal)
        for start in free:
            path = shortest_path(grid, start, goal)
            assert path[0] == start and path[-1] == goal
            assert len(path) == distances[start] + 1  # shortest (BFS distance), every maze is connected
            assert all(grid[r][c] != 1 for r, c in path)
            steps = np.abs(np.diff(np.array(path), axis=0)).sum(axis=1)
            assert (steps == 1).all()  # moves between cells sharing a side: no corner cutting


@pytest.mark.parametrize("seed", range(4))
def test_controller_reaches_the_goal_in_umaze(seed):
    env = point_maze_env("umaze", continuing_task=False)  # the episode ends on reaching the goal
    controller = WaypointController(env, noise=0.5, seed=seed)
    observation, _ = env.reset(seed=seed)
    terminated = truncated = False
    while not (terminated or truncated):
        action = controller(observation)
        assert action.shape == (2,) and action.dtype == np.float32 and np.abs(action).max() <= 1.0
        observation, _, terminated, truncated, info = env.step(action)
    env.close()
    assert terminated and info["success"]


def test_controller_rejects_bad_arguments():
    cartpole, maze = gym.make("CartPole-v1"), point_maze_env("umaze")
    with pytest.raises(TypeError, match="PointMaze"):
        WaypointController(cartpole)
    with pytest.raises(ValueError, match="noise"):
        WaypointController(maze, noise=-0.1)
    cartpole.close()
    maze.close()


def test_make_point_maze_dataset_tiny(minari_home):
    written = make_point_maze_dataset(
        "umaze", 500, episode_steps=100, reference_episodes=2, show_progress=False, dataset_id="test/pointmaze/umaze-v0"
    )
    assert written.total_steps == 500
    assert (minari_home / "test" / "pointmaze" / "umaze-v0" / "data").is_dir()
    dataset = minari.load_dataset("test/pointmaze/umaze-v0")
    assert dataset.total_steps == 500 and dataset.total_episodes == 5

    metadata = dataset.storage.metadata
    assert (metadata["ref_min_score"], metadata["ref_max_score"]) == reference_scores("umaze", 2)
    assert metadata["ref_max_score"] > metadata["ref_min_score"] and metadata["num_episodes_average_score"] == 2
    recording = json.loads(metadata["env_spec"])
    assert recording["kwargs"]["reset_target"] and recording["max_episode_steps"] == 100
    eval_env = dataset.recover_environment(eval_env=True)
    assert eval_env.spec.max_episode_steps == 300 and not eval_env.spec.kwargs["reset_target"]
    eval_env.close()
    assert minari.get_normalized_score(dataset, np.array([metadata["ref_max_score"]])) == pytest.approx(1.0)

    total_reward = 0.0
    for episode in dataset.iterate_episodes():
        observations = episode.observations
        assert observations["observation"].shape == (101, 4) and observations["desired_goal"].shape == (101, 2)
        assert episode.truncations[-1] and not episode.terminations.any()
        # sparse reward: 1 where the next position is within 0.45 of the goal it was aimed at
        distance = np.linalg.norm(observations["achieved_goal"][1:] - observations["desired_goal"][1:], axis=1)
        np.testing.assert_array_equal(episode.rewards, (distance <= 0.45).astype(np.float64))
        total_reward += float(episode.rewards.sum())
    assert total_reward >= 2  # the goal is reached (and re-sampled) several times

    episodes = load_episodes("test/pointmaze/umaze-v0")
    assert len(episodes) == 5 and episodes[0].observations.shape[-1] == 4
    keys = ("achieved_goal", "desired_goal", "observation")
    assert load_episodes(dataset, observation_key=keys)[0].observations.shape[-1] == 8

    with pytest.raises(FileExistsError):
        make_point_maze_dataset("umaze", 10, dataset_id="test/pointmaze/umaze-v0", show_progress=False)


def test_make_point_maze_dataset_rejects_unknown_preset():
    with pytest.raises(ValueError, match="preset"):
        make_point_maze_dataset("umaze", preset="gpu", show_progress=False)
    with pytest.raises(ValueError, match="malformed dataset id"):
        make_point_maze_dataset("umaze", 10, dataset_id="pointmaze", show_progress=False)


# ---------------------------------------------------------------------------------------------- fixed goal


def test_fixed_goal_ids_and_errors():
    assert point_maze_dataset_id("medium", goal="fixed") == "tt-agents/pointmaze/medium-fixed-goal-v0"
    with pytest.raises(ValueError, match="goal must be one of"):
        point_maze_env("umaze", goal="moving")
    with pytest.raises(ValueError, match="wall"):
        FixedGoalTask(point_maze_env("umaze"), (2, 1))


@pytest.mark.parametrize("maze", sorted(MAZES))
def test_fixed_goal_env_ends_at_its_goal_cell(maze):
    env = point_maze_env(maze, goal="fixed")
    controller = WaypointController(env)
    try:
        assert not env.spec.kwargs["continuing_task"]
        goal_xy = env.unwrapped.maze.cell_rowcol_to_xy(np.array(FIXED_GOAL_CELLS[maze]))
        for seed in range(2):
            observation, _ = env.reset(seed=seed)
            assert np.abs(observation["desired_goal"] - goal_xy).max() <= 0.25 + 1e-9  # PointMaze's position noise
            total, terminated, truncated = 0.0, False, False
            while not (terminated or truncated):
                observation, reward, terminated, truncated, info = env.step(controller(observation))
                total += reward
            assert terminated and info["success"] and total == 1.0
    finally:
        env.close()


def test_fixed_goal_task_relabels_desired_goal_and_reward():
    env = FixedGoalTask(point_maze_env("umaze", reset_target=True), FIXED_GOAL_CELLS["umaze"])
    policy = env.controller_policy(WaypointController(env, noise=0.3, seed=0))
    observation, _ = env.reset(seed=3)
    fixed = observation["desired_goal"].copy()
    commanded, rewards = [], []
    for _ in range(300):
        observation, reward, terminated, truncated, info = env.step(policy(observation))
        np.testing.assert_array_equal(observation["desired_goal"], fixed)  # the fixed goal, all episode long
        near = np.linalg.norm(observation["achieved_goal"] - fixed) <= 0.45
        assert reward == float(near) and info["success"] == near and not terminated
        commanded.append(env.commanded_goal.copy())
        rewards.append(reward)
    assert len({tuple(g) for g in commanded}) > 1  # the controller was sent to goals re-sampled on reaching them
    assert sum(rewards) > 0  # and passed through the fixed goal on the way
    env.close()


def test_make_fixed_goal_dataset_tiny(minari_home):
    dataset = make_point_maze_dataset(
        "umaze", 600, goal="fixed", episode_steps=300, reference_episodes=2, show_progress=False, seed=1
    )
    assert dataset.total_steps == 600
    metadata = dataset.storage.metadata
    assert (metadata["ref_min_score"], metadata["ref_max_score"]) == reference_scores("umaze", 2, goal="fixed")
    assert metadata["ref_max_score"] == 1.0  # the noise-free controller always reaches the goal, once
    eval_env = dataset.recover_environment(eval_env=True)
    assert not eval_env.spec.kwargs["continuing_task"] and eval_env.spec.kwargs["maze_map"][1][1] == "g"
    eval_env.close()
    for episode in dataset.iterate_episodes():
        observations = episode.observations
        assert np.ptp(observations["desired_goal"], axis=0).max() == 0.0
        distance = np.linalg.norm(observations["achieved_goal"][1:] - observations["desired_goal"][1:], axis=1)
        np.testing.assert_array_equal(episode.rewards, (distance <= 0.45).astype(np.float64))
        assert not episode.terminations.any()
