"""Tests of tt_agents.data_loading.episodes (with load_episodes on in-memory data): validation, dicts."""

from __future__ import annotations

import numpy as np
import pytest

from tt_agents.data_loading import Episode, load_episodes


def make_episode(n_steps: int, terminated: bool, obs_dim: int = 2, act_dim: int = 1, start: float = 0.0) -> Episode:
    values = start + np.arange(n_steps, dtype=np.float32)
    return Episode(
        observations=np.repeat(values[:, None], obs_dim, axis=1),
        actions=np.repeat(values[:, None], act_dim, axis=1),
        rewards=np.ones(n_steps, np.float32),
        terminated=terminated,
    )


def test_episode_validation_errors():
    obs, act, rew = np.zeros((4, 2)), np.zeros((4, 1)), np.zeros(4)
    with pytest.raises(ValueError, match="rewards contain NaN or inf at step 2"):
        Episode(obs, act, np.array([0.0, 0.0, np.nan, 0.0]), False)
    with pytest.raises(ValueError, match="observations contain NaN or inf"):
        Episode(np.full((4, 2), np.inf), act, rew, False)
    with pytest.raises(ValueError, match="observations have 3 rows but rewards have 4 steps"):
        Episode(obs[:3], act, rew, False)
    with pytest.raises(ValueError, match="actions have 2 steps but rewards have 4: one reward per action"):
        Episode(obs, act[:2], rew, False)
    with pytest.raises(
        ValueError, match=r"actions must have shape \(T, action_dim\) with T = 4, got shape \(4, 1, 1\)"
    ):
        Episode(obs, act[:, :, None], rew, False)
    with pytest.raises(
        ValueError, match=r"shape \(4,\) of dtype float64: a Discrete action space's actions are integers"
    ):
        Episode(obs, np.array([0.0, 1.0, 1.0, 0.0]), rew, False)
    with pytest.raises(ValueError, match="non-flat observations"):
        Episode(np.zeros((4, 2, 2)), act, rew, False)
    multi = Episode(obs, np.array([[0, 2], [1, 0], [1, 1], [0, 0]]), rew, False)  # a MultiDiscrete space's
    assert not multi.discrete_actions and multi.actions.shape == (4, 2) and multi.actions[0, 1] == 2
    discrete = Episode(obs, np.array([0, 1, 1, 0]), rew, False)  # a Discrete space's (T,) actions
    assert discrete.discrete_actions and discrete.actions.shape == (4, 1) and discrete.actions.dtype == np.float32
    with pytest.raises(ValueError, match=r"goal contain NaN or inf \(1 non-finite"):
        Episode(obs, act, rew, False, goal=np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match=r"rewards must have shape \(T,\)"):
        Episode(obs, act, np.zeros((4, 1)), False)
    with pytest.raises(ValueError, match="episode 1: rewards contain NaN"):
        load_episodes(
            [
                {"observations": obs, "actions": act, "rewards": rew},
                {"observations": obs, "actions": act, "rewards": np.full(4, np.nan)},
            ]
        )


def test_episode_takes_t_plus_one_observations():
    episode = Episode(np.arange(10.0).reshape(5, 2), np.zeros((4, 1)), np.zeros(4), True)
    assert episode.observations.shape == (4, 2) and episode.observations.dtype == np.float32
    np.testing.assert_array_equal(episode.final_observation, [8, 9])
    assert len(episode) == 4 and episode.terminated is True


def test_a_replaced_episode_keeps_discrete_actions_and_is_validated_again():
    discrete = Episode(np.zeros((3, 2)), np.array([0, 2, 1]), np.zeros(3), False, map=np.zeros((3, 4, 4), np.int64))
    moved = discrete.replaced(map=np.ones((3, 4, 4), np.int64))
    assert moved.discrete_actions and moved.actions[:, 0].tolist() == [0, 2, 1] and moved.map[0, 0, 0] == 1
    assert discrete.map[0, 0, 0] == 0  # the original is untouched
    box = Episode(np.zeros((3, 2)), np.zeros((3, 1)), np.zeros(3), False)
    assert not box.replaced(terminated=True).discrete_actions
    with pytest.raises(ValueError, match="observations have 2 rows"):
        discrete.replaced(observations=np.zeros((2, 2)))


def test_integer_observations_of_shape_t_are_a_discrete_spaces_and_stay_so_when_replaced():
    episode = Episode(np.array([0, 4, 8, 9]), np.array([1, 1, 2]), np.zeros(3), True)
    assert episode.discrete_observations and episode.observations.shape == (3, 1)
    assert episode.observations[:, 0].tolist() == [0, 4, 8] and episode.final_observation.tolist() == [9]
    moved = episode.replaced(terminated=False)
    assert moved.discrete_observations and moved.observations[:, 0].tolist() == [0, 4, 8]
    assert not Episode(np.zeros((4, 1)), np.zeros((3, 1)), np.zeros(3), True).discrete_observations
    with pytest.raises(ValueError, match=r"shape \(T, obs_dim\)"):
        Episode(np.zeros(4), np.zeros((3, 1)), np.zeros(3), True)  # 1-D floats: no space gives those


def test_load_episodes_from_dicts_and_episode_objects():
    obs = np.arange(10.0).reshape(5, 2)
    items = [
        {"observations": obs, "actions": np.zeros((4, 1)), "rewards": np.ones(4),
         "terminations": [False, False, False, True], "truncations": [False] * 4},
        {"observations": obs[:4], "actions": np.zeros((4, 1)), "rewards": np.ones(4), "terminated": False},
        {"observations": obs[:4], "actions": np.zeros((4, 1)), "rewards": np.ones(4)},
        make_episode(3, True, obs_dim=2),
    ]  # fmt: skip
    episodes = load_episodes(items)
    assert [e.terminated for e in episodes] == [True, False, False, True]
    assert episodes[3] is items[3]
    np.testing.assert_array_equal(episodes[0].final_observation, [8, 9])
    assert episodes[1].final_observation is None and episodes[1].observations.shape == (4, 2)
    with pytest.raises(ValueError, match=r"episode 0: episode dict is missing key\(s\) \['rewards'\]"):
        load_episodes([{"observations": obs, "actions": np.zeros((4, 1))}])
    with pytest.raises(ValueError, match="terminations is True at step 1 before"):
        load_episodes([{**items[0], "terminations": [False, True, False, True]}])
    with pytest.raises(TypeError, match="source must be"):
        load_episodes(42)


def test_load_episodes_dict_observations_with_hindsight_goal():
    observations = {
        "observation": np.arange(10.0).reshape(5, 2),
        "achieved_goal": np.arange(5.0)[:, None] * np.ones((1, 3)),
        "desired_goal": np.zeros((5, 3)),
    }
    item = {"observations": observations, "actions": np.zeros((4, 1)), "rewards": np.ones(4)}
    (episode,) = load_episodes([item], goal_key="achieved_goal")
    np.testing.assert_array_equal(episode.goal, [4, 4, 4])  # achieved at the final observation
    assert episode.observations.shape == (4, 2)
    (plain,) = load_episodes([item])
    assert plain.goal is None
    (by_key,) = load_episodes([item], observation_key="desired_goal")
    assert by_key.observations.shape == (4, 3)
    with pytest.raises(ValueError, match=r"no key 'state' \(observation_key\); available keys: \['achieved_goal'"):
        load_episodes([item], observation_key="state")
    with pytest.raises(ValueError, match="no key 'goal' \\(goal_key\\)"):
        load_episodes([item], goal_key="goal")
    with pytest.raises(ValueError, match="not a Dict observation"):
        load_episodes([{**item, "observations": observations["observation"]}], goal_key="achieved_goal")
