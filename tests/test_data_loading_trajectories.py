"""Tests of tt_agents.data_loading.trajectories: reward-to-go, termination penalty, token columns, splits."""

from __future__ import annotations

import numpy as np
import pytest
from test_data_loading_episodes import make_episode

from tt_agents.config import DataConfig
from tt_agents.data_loading import Episode, TrajectoryData, reward_to_go


def test_reward_to_go_excludes_current_reward():
    np.testing.assert_allclose(reward_to_go(np.array([1.0, 2.0, 3.0, 4.0]), 0.5), [4.5, 5.0, 4.0, 0.0])
    np.testing.assert_allclose(reward_to_go(np.array([7.0]), 0.99), [0.0])


def test_joined_rows_penalty_on_true_terminal_only_and_raw_returns():
    episode = Episode(
        observations=np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]),
        actions=np.array([[10.0], [11.0], [12.0]]),
        rewards=np.array([1.0, 2.0, 3.0]),
        terminated=True,
    )
    truncated = Episode(episode.observations, episode.actions, episode.rewards, terminated=False)
    data = TrajectoryData.from_episodes([episode, truncated], DataConfig(discount=0.5, termination_penalty=-100))

    assert data.layout.transition_dim == 2 + 1 + 2 and data.layout.goal_dim == 0
    terminal_rows, truncated_rows = data.joined
    assert terminal_rows.dtype == np.float32 and terminal_rows.shape == (3, 5)
    np.testing.assert_allclose(terminal_rows[:, :2], episode.observations)
    np.testing.assert_allclose(terminal_rows[:, 2], [10, 11, 12])
    np.testing.assert_allclose(terminal_rows[:, 3], [1, 2, -100])  # penalized terminal reward
    np.testing.assert_allclose(terminal_rows[:, 4], [2 + 0.5 * -100, -100, 0])
    np.testing.assert_allclose(truncated_rows[:, 3], [1, 2, 3])  # truncation: no penalty
    np.testing.assert_allclose(truncated_rows[:, 4], [2 + 0.5 * 3, 3, 0])
    np.testing.assert_allclose(data.returns, [6, 6])  # raw rewards
    assert data.terminated == [True, False] and data.n_episodes == 2 and data.n_transitions == 6

    kept = TrajectoryData.from_episodes([episode], DataConfig(discount=0.5, termination_penalty=None))
    np.testing.assert_allclose(kept.joined[0][:, 3], [1, 2, 3])


def test_token_columns_broadcast_goal():
    episodes = [make_episode(3, False), make_episode(2, True)]
    episodes[0].goal, episodes[1].goal = np.array([5.0, 6.0], np.float32), np.array([7.0, 8.0], np.float32)
    data = TrajectoryData.from_episodes(episodes)
    assert data.layout.goal_dim == 2
    columns = data.token_columns()
    assert columns.shape == (5, data.layout.n_columns) and columns.dtype == np.float32
    np.testing.assert_array_equal(columns[:3, data.layout.goal_slice], [[5, 6]] * 3)
    np.testing.assert_array_equal(columns[3:, data.layout.goal_slice], [[7, 8]] * 2)
    np.testing.assert_array_equal(columns[:, : data.layout.transition_dim], np.concatenate(data.joined))


def test_mismatched_episodes_rejected():
    with pytest.raises(ValueError, match="episode 1 has observation/action/goal sizes"):
        TrajectoryData.from_episodes([make_episode(3, False), make_episode(3, False, obs_dim=3)])
    with_goal = make_episode(3, False)
    with_goal.goal = np.zeros(2, np.float32)
    with pytest.raises(ValueError, match="all or none"):
        TrajectoryData.from_episodes([with_goal, make_episode(3, False)])
    with pytest.raises(ValueError, match="no episodes"):
        TrajectoryData.from_episodes([])


def test_split_by_episode_deterministic_disjoint_covering():
    data = TrajectoryData.from_episodes([make_episode(2 + i, False, start=100 * i) for i in range(20)])
    train, validation = data.split(0.2, seed=3)
    assert (train.n_episodes, validation.n_episodes) == (16, 4)

    def first_values(d: TrajectoryData) -> set[float]:  # episodes are identified by their first value
        return {float(rows[0, 0]) for rows in d.joined}

    assert first_values(train).isdisjoint(first_values(validation))
    assert first_values(train) | first_values(validation) == first_values(data)
    again_train, again_validation = data.split(0.2, seed=3)
    assert first_values(again_validation) == first_values(validation)
    assert first_values(data.split(0.2, seed=4)[1]) != first_values(validation)
    assert len(train.returns) == 16 and train.n_transitions + validation.n_transitions == data.n_transitions

    assert data.split(0.01, seed=0)[1].n_episodes == 1  # at least one validation episode
    assert data.split(0.0, seed=0)[1].n_episodes == 0
    two = TrajectoryData.from_episodes([make_episode(2, False), make_episode(2, False)])
    assert [part.n_episodes for part in two.split(0.9, seed=0)] == [1, 1]  # always one left for training
    single_train, empty = TrajectoryData.from_episodes([make_episode(3, False)]).split(0.5, seed=0)
    assert single_train.n_episodes == 1 and empty.n_episodes == 0
    assert empty.token_columns().shape == (0, data.layout.n_columns)
    with pytest.raises(ValueError, match="validation_fraction"):
        data.split(1.0, seed=0)
