"""Tests of the continuous four-rooms environment, its scripted expert, and of tt_agents.envs importing nothing
above it."""

from __future__ import annotations

import ast
import importlib
import itertools
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import tt_agents.envs
from tt_agents.envs import FOUR_ROOMS_ID, FourRoomsEnv, FourRoomsExpert
from tt_agents.envs.four_rooms import (
    CELL,
    DOORWAY_WIDTH,
    DOORWAYS,
    LEFT_WALL_Y,
    MAX_EPISODE_STEPS,
    STEP_LENGTH,
    VERTICAL_WALL_X,
    WALL_THICKNESS,
)
from tt_agents.envs.four_rooms_expert import ScriptedExpertPolicy, doorway_between

# Largest distance from a doorway's centre at which a one-step move can change room.
_CROSSING_RADIUS = np.hypot(DOORWAY_WIDTH / 2, WALL_THICKNESS / 2) + np.sqrt(2) * STEP_LENGTH + 1e-9


def _check_path(env: FourRoomsEnv, path: np.ndarray) -> None:
    """Assert a trajectory of positions stays free, never cuts a wall, and changes room only at doorways."""
    assert np.all(env.is_free(path)), "a position is inside a wall or outside the square"
    fractions = np.linspace(0.0, 1.0, 33)[None, :, None]
    between = path[:-1, None, :] + fractions * (path[1:, None, :] - path[:-1, None, :])
    assert np.all(env.is_free(between)), "a move cut through a wall"
    rooms = env.room_of(path)
    for t in np.flatnonzero(rooms[1:] != rooms[:-1]):
        door = doorway_between(int(rooms[t]), int(rooms[t + 1]))
        centre = np.asarray(door.centre)
        assert np.linalg.norm(path[t] - centre) <= _CROSSING_RADIUS, (path[t], path[t + 1])
        assert np.linalg.norm(path[t + 1] - centre) <= _CROSSING_RADIUS, (path[t], path[t + 1])


def _rollout(env: FourRoomsEnv, start: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Positions (float64, internal state) visited when applying ``actions`` from ``start``."""
    goal = max((np.array([0.95, 0.05]), np.array([0.05, 0.95])), key=lambda g: np.linalg.norm(g - start))
    env.reset(seed=0, options={"start": start, "goal": goal})
    path = [env.position]
    for action in actions:
        env.step(action)
        path.append(env.position)
    return np.asarray(path)


def test_registration_and_reimport() -> None:
    importlib.reload(tt_agents.envs)  # re-registration is guarded
    env = gym.make(FOUR_ROOMS_ID)
    assert env.spec is not None and env.spec.max_episode_steps == MAX_EPISODE_STEPS
    assert isinstance(env.unwrapped, FourRoomsEnv)
    env.reset(seed=0)
    for t in range(1, MAX_EPISODE_STEPS + 1):
        _, reward, terminated, truncated, info = env.step(np.zeros(2, dtype=np.float32))
        assert reward == -1.0 and not terminated and not info["is_success"]
        assert truncated == (t == MAX_EPISODE_STEPS)


def test_check_env() -> None:
    env = gym.make(FOUR_ROOMS_ID, render_mode="rgb_array").unwrapped
    check_env(env)


def test_geometry_helpers() -> None:
    env = FourRoomsEnv()
    assert env.wall_rects.shape == (7, 4) and env.doorway_centres.shape == (4, 2)
    assert np.all(env.is_free(env.doorway_centres))
    for i, door in enumerate(DOORWAYS):
        assert {door.negative_room, door.positive_room} == {i, (i + 1) % 4}
        assert doorway_between(i, (i + 1) % 4) is door
    with pytest.raises(ValueError, match="rooms 0 and 2 are not adjacent"):
        doorway_between(0, 2)
    assert env.room_of([0.1, 0.9]) == 0 and env.room_of([0.9, 0.9]) == 1
    assert env.room_of([0.9, 0.1]) == 2 and env.room_of([0.1, 0.1]) == 3
    assert env.room_of(np.zeros((3, 5, 2))).shape == (3, 5)
    assert env.is_free(np.full((4, 2), 0.25)).shape == (4,)
    assert not env.is_free([VERTICAL_WALL_X, 0.5]) and not env.is_free([1.01, 0.5])
    assert not env.is_free([np.nan, 0.5])
    assert env.is_free([VERTICAL_WALL_X - WALL_THICKNESS / 2, 0.3])  # a wall's surface is free


def test_reset_samples_free_distinct_points() -> None:
    env = FourRoomsEnv()
    for seed in range(200):
        obs, info = env.reset(seed=seed)
        assert env.observation_space.contains(obs) and info == {"is_success": False}
        np.testing.assert_array_equal(obs["observation"], obs["achieved_goal"])
        assert env.is_free(obs["observation"]) and env.is_free(obs["desired_goal"])
        assert np.linalg.norm(obs["observation"] - obs["desired_goal"]) >= env.min_goal_distance - 1e-6
    first, _ = env.reset(seed=7)
    again, _ = env.reset(seed=7)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])


def test_reset_options_respected_and_validated() -> None:
    env = FourRoomsEnv()
    start, goal = np.array([0.1, 0.9]), np.array([0.9, 0.1])
    obs, _ = env.reset(seed=0, options={"start": start, "goal": goal})
    np.testing.assert_allclose(obs["observation"], start, atol=1e-7)
    np.testing.assert_allclose(obs["desired_goal"], goal, atol=1e-7)
    np.testing.assert_array_equal(env.position, start)
    np.testing.assert_array_equal(env.goal, goal)
    for seed in range(20):
        obs, _ = env.reset(seed=seed, options={"start": start})
        np.testing.assert_allclose(obs["observation"], start, atol=1e-7)
        assert np.linalg.norm(obs["desired_goal"] - start) >= env.min_goal_distance - 1e-6
        obs, _ = env.reset(seed=seed, options={"goal": goal, "start": None})
        np.testing.assert_allclose(obs["desired_goal"], goal, atol=1e-7)
        assert env.is_free(obs["observation"])
    bad_points = (
        [VERTICAL_WALL_X, 0.5],
        [-0.1, 0.5],
        [0.5, 1.2],
        [0.2, np.nan],
        [0.2, 0.3, 0.4],
        [[0.2, 0.2]],
    )
    for key, bad in itertools.product(("start", "goal"), bad_points):
        with pytest.raises(ValueError, match=rf"options\['{key}'\] must be a free point of shape \(2,\)"):
            env.reset(options={key: bad})
    with pytest.raises(ValueError, match="is already within goal_radius"):
        env.reset(options={"start": start, "goal": start + 0.01})
    with pytest.raises(ValueError, match=r"unknown reset options \['begin'\]"):
        env.reset(options={"begin": start})


def test_random_actions_never_cross_walls() -> None:
    env = FourRoomsEnv()
    rng = np.random.default_rng(0)
    for episode in range(60):
        obs, _ = env.reset(seed=episode)
        actions = rng.uniform(-1.5, 1.5, size=(150, 2))  # out-of-range actions are clipped
        _check_path(env, _rollout(env, env.position, actions))


def test_adversarial_pushes_never_cross_walls() -> None:
    env = FourRoomsEnv()
    rng = np.random.default_rng(1)
    directions = [np.array(d, dtype=np.float64) for d in itertools.product((-1, 0, 1), repeat=2) if any(d)]
    directions += [d / np.linalg.norm(d) for d in rng.normal(size=(8, 2))]
    corners = [(x, y) for x0, y0, x1, y1 in env.wall_rects for x in (x0, x1) for y in (y0, y1)]
    for corner in corners:
        starts = np.asarray(corner) + rng.uniform(-0.03, 0.03, size=(6, 2))
        for start in starts[env.is_free(starts)]:
            for direction in directions:
                _check_path(env, _rollout(env, start, np.tile(direction, (25, 1))))
            _check_path(env, _rollout(env, start, np.sign(rng.normal(size=(60, 2)))))


def test_wall_surfaces_and_junctions_do_not_leak() -> None:
    env = FourRoomsEnv()
    h = WALL_THICKNESS / 2
    # Sliding up along the vertical wall's west surface or the outer west border must stop at the left wall.
    cases = [([VERTICAL_WALL_X - h, 0.3], [1.0, 1.0]), ([VERTICAL_WALL_X - h, 2 * CELL], [1.0, 1.0])]
    cases += [([0.0, 0.3], [-1.0, 1.0]), ([VERTICAL_WALL_X - h, 0.3], [0.0, 1.0]), ([0.0, 0.3], [0.0, 1.0])]
    for start, action in cases:
        path = _rollout(env, np.asarray(start), np.tile(action, (40, 1)))
        _check_path(env, path)
        assert np.all(env.room_of(path) == 3)
        assert path[-1, 1] == LEFT_WALL_Y - h
    # Pushing into the corner of a doorway edge at 45 degrees stops on the wall instead of cutting it.
    door = DOORWAYS[2]
    corner = np.array([VERTICAL_WALL_X - h, door.centre[1] + DOORWAY_WIDTH / 2])
    path = _rollout(env, corner - 0.02, np.tile([1.0, 1.0], (30, 1)))
    _check_path(env, path)


def test_success_terminates_with_zero_reward() -> None:
    env = FourRoomsEnv()
    start, goal = np.array([0.1, 0.1]), np.array([0.2, 0.1])
    obs, _ = env.reset(seed=0, options={"start": start, "goal": goal})
    rewards, successes = [], []
    terminated = False
    while not terminated:
        obs, reward, terminated, truncated, info = env.step(np.array([1.0, 0.0], dtype=np.float32))
        rewards.append(reward)
        successes.append(info["is_success"])
        assert not truncated
    assert rewards[-1] == 0.0 and successes[-1]
    assert all(r == -1.0 for r in rewards[:-1]) and not any(successes[:-1])
    assert np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"]) < env.goal_radius


def test_compute_reward_is_vectorised_and_matches_step() -> None:
    env = gym.make(FOUR_ROOMS_ID)
    expert = FourRoomsExpert(env, noise=0.5, seed=0)
    achieved, desired, rewards, infos = [], [], [], []
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            obs, reward, terminated, truncated, info = env.step(expert(obs))
            achieved.append(obs["achieved_goal"])
            desired.append(obs["desired_goal"])
            rewards.append(reward)
            infos.append(info)
            done = terminated or truncated
    batch = env.unwrapped.compute_reward(np.asarray(achieved), np.asarray(desired), infos)
    assert batch.shape == (len(rewards),)
    np.testing.assert_array_equal(batch, np.asarray(rewards))
    assert set(np.unique(batch)) == {-1.0, 0.0}
    grid = env.unwrapped.compute_reward(np.zeros((2, 3, 2)), np.zeros((2, 3, 2)), None)
    assert grid.shape == (2, 3) and np.all(grid == 0.0)


def test_expert_reaches_goals() -> None:
    env = gym.make(FOUR_ROOMS_ID)
    expert = FourRoomsExpert(env, noise=0.1, seed=0)
    successes = []
    for seed in range(100):
        obs, _ = env.reset(seed=1000 + seed)
        done = False
        while not done:
            action = expert(obs)
            assert action.dtype == np.float32 and env.action_space.contains(action)
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        successes.append(info["is_success"])
    assert np.mean(successes) >= 0.97


def test_expert_validates_arguments() -> None:
    with pytest.raises(TypeError, match="FourRoomsExpert needs a FourRoomsEnv, got CartPoleEnv"):
        FourRoomsExpert(gym.make("CartPole-v1"))
    with pytest.raises(ValueError, match="noise must be >= 0"):
        FourRoomsExpert(FourRoomsEnv(), noise=-0.1)


def test_render_rgb_array() -> None:
    env = FourRoomsEnv(render_mode="rgb_array", render_size=64)
    env.reset(seed=0)
    frame = env.render()
    assert isinstance(frame, np.ndarray) and frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) >= 3  # background, walls, agent and/or goal
    with pytest.warns(UserWarning):
        assert FourRoomsEnv().render() is None
    with pytest.raises(ValueError, match="render_mode must be None or 'rgb_array'"):
        FourRoomsEnv(render_mode="human")


def test_scripted_expert_policy_predicts_single_and_batched() -> None:
    policy = ScriptedExpertPolicy(noise=0.0)
    single = {"observation": np.array([0.2, 0.8]), "desired_goal": np.array([0.3, 0.7])}
    action, state = policy.predict(single)
    assert action.shape == (2,) and state is None
    batch = {key: np.stack([value, value]) for key, value in single.items()}
    actions, _ = policy.predict(batch)
    assert actions.shape == (2, 2)
    np.testing.assert_array_equal(actions[0], action)


def test_envs_import_only_gymnasium_numpy_and_the_standard_library() -> None:
    """Environments and scripted experts know nothing of agents, tokens or datasets (nor torch, Minari, Rich)."""
    standard_library = {"__future__", "collections", "dataclasses", "heapq", "typing"}
    allowed = standard_library | {"gymnasium", "gymnasium_robotics", "minigrid", "numpy"}  # and environment libraries
    for path in Path(tt_agents.envs.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                continue  # another tt_agents.envs module
            if isinstance(node, ast.ImportFrom):
                roots = [node.module.split(".")[0]]
            elif isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            else:
                continue
            assert set(roots) <= allowed, f"{path.name} imports {roots}"
