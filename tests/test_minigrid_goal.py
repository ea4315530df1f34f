"""MiniGrid maps as goal tasks (tt_agents.envs.minigrid_goal) and their mixed expert data
(tt_agents.data_making.minigrid): Dict observations with a static map, four actions, held-out seeds, a goal-mode
agent on a Discrete action space."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium import spaces

from tt_agents.data_loading import load_episodes
from tt_agents.data_making import make_minigrid_dataset, training_seeds
from tt_agents.envs.minigrid_expert import TOGGLE
from tt_agents.envs.minigrid_goal import ACTIONS, EMPTY_TYPE, MiniGridGoalEnv, MiniGridGoalExpert

MULTIROOM = "MiniGrid-MultiRoom-N4-S5-v1"


@pytest.fixture
def env():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # minigrid warns that a newer MultiRoom version exists
        env = MiniGridGoalEnv(MULTIROOM)
    yield env
    env.close()


def test_observations_hold_the_agent_the_goal_and_a_map_without_either(env) -> None:
    obs, _ = env.reset(seed=3)
    assert len(env.unwrapped.rooms) == 4 and env.unwrapped.max_steps == 80  # the paper's N4-S5 (v0 makes six rooms)
    assert env.observation_space.contains(obs) and env.action_space == spaces.Discrete(4)
    base = env.unwrapped
    x, y = base.agent_pos
    np.testing.assert_array_equal(obs["observation"], [x, y, base.agent_dir])
    np.testing.assert_array_equal(obs["achieved_goal"], [x, y])
    gx, gy = obs["desired_goal"].astype(int)
    assert base.grid.get(gx, gy).type == "goal"
    assert obs["map"][gy, gx] == EMPTY_TYPE and obs["map"][y, x] == EMPTY_TYPE  # neither drawn in the map
    assert (obs["map"] == 2).any() and (obs["map"] == 4).any()  # walls and doors
    assert env.observation_space["map"].shape == (25, 25)


def test_the_expert_reaches_the_goal_and_the_map_never_changes(env) -> None:
    expert = MiniGridGoalExpert(env)
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        first_map, toggled = obs["map"].copy(), False
        for _ in range(env.unwrapped.max_steps):
            action = expert(obs)
            toggled |= ACTIONS[action] == TOGGLE
            obs, reward, terminated, truncated, info = env.step(action)
            np.testing.assert_array_equal(obs["map"], first_map)  # doors drawn as doors, open or not
            if terminated or truncated:
                break
        assert terminated and info["is_success"] and reward > 0, f"seed {seed}"
        np.testing.assert_array_equal(obs["achieved_goal"], obs["desired_goal"])
        assert toggled  # MultiRoom's doors start closed


def test_bad_actions_and_settings_are_refused(env) -> None:
    env.reset(seed=0)
    with pytest.raises(ValueError, match="not in Discrete"):
        env.step(5)
    with pytest.raises(ValueError, match="random_fraction"):
        MiniGridGoalExpert(env, random_fraction=1.5)
    with pytest.raises(TypeError, match="wraps MiniGrid"):
        MiniGridGoalEnv("CartPole-v1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = MiniGridGoalEnv(MULTIROOM, map_size=10)
    with pytest.raises(ValueError, match="larger than map_size 10"):
        small.reset(seed=0)


def test_the_dataset_mixes_expert_and_random_episodes_on_recorded_maps(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = make_minigrid_dataset(n_episodes=12, random_fractions=(0.0, 1.0), seed=5, show_progress=False)
    assert dataset.total_episodes == 12 and dataset.action_space == spaces.Discrete(4)
    assert set(dataset.observation_space.spaces) == {"observation", "achieved_goal", "desired_goal", "map"}
    successes = [float(np.sum(e.rewards)) > 0 for e in dataset.iterate_episodes()]
    assert 0 < sum(successes) < 12  # expert episodes reach the goal, random ones mostly do not
    seeds = training_seeds(dataset)
    assert len(seeds) == 12 and 5 in seeds
    episodes = load_episodes(dataset, observation_key="observation", goal_key="achieved_goal")
    assert all(e.discrete_actions and e.observations.shape[1] == 3 and e.goal.shape == (2,) for e in episodes)
    for episode, minari_episode in zip(episodes, dataset.iterate_episodes(), strict=True):
        np.testing.assert_array_equal(episode.goal, minari_episode.observations["achieved_goal"][-1])


def test_a_goal_agent_plans_discrete_actions_on_minigrid_maps(tmp_path, monkeypatch, env, one_torch_thread) -> None:
    from stable_baselines3.common.evaluation import evaluate_policy

    from tt_agents import TTAgent, cpu_preset

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = make_minigrid_dataset(n_episodes=6, seed=1, show_progress=False)
    config = cpu_preset()
    config.planner = type(config.planner)(mode="goal", beam_width=4, horizon=2)
    agent = TTAgent(env.observation_space, env.action_space, config=config, device="cpu")
    assert agent.config.model.map_shape == (25, 25) and config.model.map_shape is None  # read from the space
    agent.fit(dataset, 10, show_progress=False)
    assert agent.model.map_encoder is not None
    env.reset(seed=10**6)
    rewards, lengths = evaluate_policy(agent, env, n_eval_episodes=1, return_episode_rewards=True, warn=False)
    assert len(rewards) == 1 and 1 <= lengths[0] <= env.unwrapped.max_steps

    first, _ = env.reset(seed=10**6 + 1)
    second, _ = env.reset(seed=10**6 + 2)
    assert not np.array_equal(first["map"], second["map"])
    batch = {key: np.stack([first[key], second[key]]) for key in first}
    plans = {}
    for decoding in ("cached", "static"):  # the static cache carries each environment's map like the segmented one
        agent.configure_planner(decoding=decoding, seed=3)
        agent.predict(batch)
        plans[decoding] = agent.last_plan
    np.testing.assert_array_equal(plans["static"].actions, plans["cached"].actions)
    np.testing.assert_allclose(plans["static"].scores, plans["cached"].scores, rtol=1e-4)
    swapped = {**batch, "map": batch["map"][::-1].copy()}
    agent.configure_planner(decoding="cached", seed=3)
    agent.predict(swapped)
    assert not np.allclose(agent.last_plan.scores, plans["cached"].scores), "the plans read the maps"
    with pytest.raises(ValueError, match="needs a 'map' entry"):
        agent.predict({key: value for key, value in batch.items() if key != "map"})
    config.model.map_shape = (20, 20)
    with pytest.raises(ValueError, match=r"map_shape is \(20, 20\); the observation space has a \(25, 25\) map"):
        TTAgent(env.observation_space, env.action_space, config=config, device="cpu")


def test_maps_in_the_data_must_fit_the_network_and_a_flat_map_entry_is_an_ordinary_feature(env) -> None:
    from tt_agents import TTAgent, cpu_preset
    from tt_agents.data_loading import Episode
    from tt_agents.inputs import check_data_maps

    grid = np.ones((25, 25), np.int64)
    episode = Episode(np.zeros((3, 3)), np.zeros(3, np.int64), np.zeros(3), False, goal=np.zeros(2), map=grid)
    check_data_maps([episode], (25, 25), 16)
    with pytest.raises(ValueError, match=r"reads a \(25, 25\) map per episode; episode 0 has no map"):
        check_data_maps([Episode(np.zeros((3, 3)), np.zeros(3, np.int64), np.zeros(3), False)], (25, 25), 16)
    with pytest.raises(ValueError, match="cell of value 16; ModelConfig.map_classes is 16"):
        check_data_maps(
            [Episode(np.zeros((3, 3)), np.zeros(3, np.int64), np.zeros(3), False, map=grid * 16)], (25, 25), 16
        )
    with pytest.raises(ValueError, match="has a map but the agent reads none"):
        check_data_maps([episode], None, 16)
    flat = spaces.Dict({"map": spaces.Box(-1.0, 1.0, (4,)), "position": spaces.Box(-1.0, 1.0, (3,))})
    agent = TTAgent(flat, spaces.Box(-1.0, 1.0, (2,)), config=cpu_preset(), device="cpu")
    assert agent.config.model.map_shape is None and agent.layout.observation_dim == 7
    with pytest.raises(TypeError, match="2-D Box of integer cells"):
        TTAgent(spaces.Dict({"map": spaces.Box(0.0, 1.0, (5, 5))}), spaces.Box(-1.0, 1.0, (2,)), device="cpu")


FRONT = ((1, 0), (0, 1), (-1, 0), (0, -1))
"""The cell in front of a MiniGrid agent facing east, south, west, north, as (dx, dy)."""


def test_the_local_view_is_centred_on_the_agent_turned_its_way_and_shows_doors_open_once_toggled() -> None:
    from tt_agents.envs.minigrid_goal import OPEN_DOOR_TYPE

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = MiniGridGoalEnv(MULTIROOM, view="local", view_size=7)
    assert env.observation_space["map"].shape == (7, 7)
    expert = MiniGridGoalExpert(env)
    obs, _ = env.reset(seed=3)
    whole = env.full_map
    views_changed = opened = False
    for _ in range(env.unwrapped.max_steps):
        assert env.observation_space.contains(obs)
        x, y, direction = obs["observation"].astype(int)
        view = obs["map"]
        assert view[3, 3] in (EMPTY_TYPE, OPEN_DOOR_TYPE)  # the agent's own cell (or doorway), the agent not drawn
        forward, right = FRONT[direction], FRONT[(direction + 1) % 4]  # (dx, dy) of "up" and "right" in the view
        for row in range(7):
            for col in range(7):
                ahead, aside = 3 - row, col - 3  # cells in front of the agent, to its right
                cx, cy = x + ahead * forward[0] + aside * right[0], y + ahead * forward[1] + aside * right[1]
                inside = 0 <= cy < whole.shape[0] and 0 <= cx < whole.shape[1]
                cell = whole[cy, cx] if inside else 0
                assert view[row, col] == cell or (cell == 4 and view[row, col] == OPEN_DOOR_TYPE)
        front_cell = env.unwrapped.grid.get(*env.unwrapped.front_pos)
        assert (view[2, 3] == 2) == (front_cell is not None and front_cell.type == "wall")
        action = expert(obs)
        obs, _, terminated, truncated, info = env.step(action)
        views_changed |= not np.array_equal(obs["map"], view)
        opened |= bool((obs["map"] == OPEN_DOOR_TYPE).any())
        if terminated or truncated:
            break
    assert info["is_success"] and views_changed and opened
    with pytest.raises(ValueError, match="view must be 'map' or 'local'"):
        MiniGridGoalEnv(MULTIROOM, view="image")
    with pytest.raises(ValueError, match="view_size must be odd"):
        MiniGridGoalEnv(MULTIROOM, view="local", view_size=8)


def test_an_agent_on_local_views_reads_each_windows_first_view_and_plans_from_the_current_step(
    tmp_path, monkeypatch, one_torch_thread
) -> None:
    from tt_agents import TTAgent, cpu_preset
    from tt_agents.data_loading import relabelled_prefixes

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = make_minigrid_dataset(n_episodes=6, seed=2, view="local", show_progress=False)
        env = MiniGridGoalEnv(MULTIROOM, view="local")
    episodes = load_episodes(dataset, observation_key="observation", goal_key="achieved_goal", map_key="map")
    assert all(e.map_per_step and e.map.shape == (len(e), 11, 11) for e in episodes)
    prefixes = relabelled_prefixes(episodes, 2, seed=0, goal_columns=slice(0, 2))
    assert all(np.array_equal(p.map, prefixes[0].map[: len(p)]) for p in prefixes[1:3])  # a prefix's own views
    config = cpu_preset()
    config.planner = type(config.planner)(mode="goal", beam_width=4, horizon=2, seed=1)
    agent = TTAgent(env.observation_space, env.action_space, config=config, device="cpu")
    agent.fit(prefixes, 10, show_progress=False)
    assert agent.config.model.map_per_step and agent.planner.context_transitions == 0
    obs, _ = env.reset(seed=10**6)
    _, state = agent.predict(obs)
    obs, *_ = env.step(2)
    agent.planner.seed(1)
    with_history, _ = agent.predict(obs, state)
    first_plan = agent.last_plan
    agent.planner.seed(1)
    alone, _ = agent.predict(obs)  # a fresh state: no past transitions
    np.testing.assert_array_equal(with_history, alone)
    np.testing.assert_array_equal(agent.last_plan.actions, first_plan.actions)


def test_the_goal_is_drawn_in_the_local_view_where_it_lies_and_relabelled_views_are_drawn_alike() -> None:
    from tt_agents.envs.minigrid_goal import GOAL_TYPE, draw_goal

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = MiniGridGoalEnv(MULTIROOM, view="local", view_size=7)
        drawn = MiniGridGoalEnv(MULTIROOM, view="local", view_size=7, goal_in_view=True)
    expert = MiniGridGoalExpert(plain)
    obs, _ = plain.reset(seed=5)
    obs_drawn, _ = drawn.reset(seed=5)
    observations, views, seen = [], [], 0
    for _ in range(plain.unwrapped.max_steps):
        x, y, direction = obs["observation"].astype(int)
        gx, gy = obs["desired_goal"].astype(int)
        forward, right = FRONT[direction], FRONT[(direction + 1) % 4]
        ahead = (gx - x) * forward[0] + (gy - y) * forward[1]  # the goal's cells in front of the agent
        aside = (gx - x) * right[0] + (gy - y) * right[1]  # and to its right
        expected = obs["map"].copy()
        if max(abs(ahead), abs(aside)) <= 3:
            expected[3 - ahead, 3 + aside] = GOAL_TYPE
            seen += 1
        np.testing.assert_array_equal(obs_drawn["map"], expected)
        assert (obs_drawn["map"] == GOAL_TYPE).sum() == (max(abs(ahead), abs(aside)) <= 3)
        observations.append(obs["observation"])
        views.append(obs["map"])
        action = expert(obs)
        obs, _, terminated, truncated, info = plain.step(action)
        obs_drawn, *_ = drawn.step(action)
        if terminated or truncated:
            break
    assert info["is_success"] and 0 < seen < len(views)
    assert expected[2, 3] == GOAL_TYPE  # the last step was forward onto the goal
    # a relabelled goal (a cell the agent passed) is drawn by the same function, at its own place
    observations, views = np.array(observations), np.array(views)
    relabelled = observations[len(views) // 2, :2]
    redrawn = draw_goal(views, observations, relabelled)
    assert (redrawn == GOAL_TYPE).sum(axis=(1, 2))[len(views) // 2] == 1
    assert redrawn[len(views) // 2, 3, 3] == GOAL_TYPE  # standing on it: the centre
    with pytest.raises(ValueError, match="goal_in_view draws the goal in the 'local' view"):
        MiniGridGoalEnv(MULTIROOM, goal_in_view=True)
    with pytest.raises(ValueError, match=r"observations must be \(2, 3\)"):
        draw_goal(views[:2], observations[:3], relabelled)
