"""Tests of tt_agents.data_loading.relabelling: prefixes relabelled with the position they reached."""

from __future__ import annotations

import numpy as np
import pytest

from tt_agents.data_loading import Episode, relabelled_prefixes


def test_relabelled_prefixes_rewards_and_errors():
    positions = np.stack([np.arange(6.0), np.zeros(6)], axis=1)  # (6, 2) the achieved positions
    episode = Episode(positions, np.ones((5, 2)), np.full(5, -1.0), True, goal=positions[-1])
    out = relabelled_prefixes([episode], 10, min_length=2, seed=0, step_reward=0.0, goal_reward=1.0)
    assert out[0] is episode and sorted(len(e) for e in out[1:]) == [2, 3, 4]  # every shorter prefix, at most 10
    for prefix in out[1:]:
        t = len(prefix)
        np.testing.assert_array_equal(prefix.goal, positions[t])
        np.testing.assert_array_equal(prefix.rewards, [0.0] * (t - 1) + [1.0])
        assert prefix.terminated
    assert relabelled_prefixes([episode], 0) == [episode]
    with pytest.raises(ValueError, match="goal-conditioned"):
        relabelled_prefixes([Episode(positions, np.ones((5, 2)), np.zeros(5), True)], 2)
    with pytest.raises(ValueError, match="achieved positions"):
        relabelled_prefixes([Episode(positions, np.ones((5, 2)), np.zeros(5), True, goal=np.zeros(3))], 2)


def test_prefixes_of_minigrid_style_episodes_keep_the_map_and_discrete_actions():
    cells = np.stack([np.arange(7.0), np.ones(7), np.arange(7.0) % 4], axis=1)  # (7, 3) [x, y, direction]
    grid = np.eye(5, dtype=np.int64)
    episode = Episode(cells, np.arange(6) % 4, np.zeros(6), True, goal=cells[-1, :2], map=grid)
    out = relabelled_prefixes([episode], 3, min_length=2, seed=1, goal_columns=slice(0, 2))
    assert len(out) == 4
    for prefix in out[1:]:
        t = len(prefix)
        np.testing.assert_array_equal(prefix.goal, cells[t, :2])
        np.testing.assert_array_equal(prefix.final_observation, cells[t])
        assert prefix.discrete_actions and prefix.actions[:, 0].tolist() == (np.arange(t) % 4).tolist()
        np.testing.assert_array_equal(prefix.map, grid)
    with pytest.raises(ValueError, match="pass goal_columns"):
        relabelled_prefixes([episode], 2)
