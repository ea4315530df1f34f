"""Tests of tt_agents.baselines.transitions: episodes joined into the arrays the baselines train on."""

from __future__ import annotations

import numpy as np
import pytest

from tt_agents.baselines import transitions_from_episodes
from tt_agents.data_loading import Episode


def test_transitions_next_observations_terminals_and_dimension_checks():
    obs = np.arange(12, dtype=np.float32).reshape(4, 3)  # T + 1 rows: the last is the final observation
    truncated = Episode(obs, np.zeros((3, 1)), np.ones(3), terminated=False)
    terminal = Episode(obs[:3], np.zeros((3, 1)), np.ones(3), terminated=True)
    no_final = Episode(obs[:3], np.zeros((3, 1)), np.full(3, 2.0), terminated=False)
    data = transitions_from_episodes([truncated, terminal, no_final], 3, 1, need_next=True)
    np.testing.assert_array_equal(data.next_observations[:3], obs[1:])  # final_observation used at the end
    np.testing.assert_array_equal(data.terminals, [0, 0, 0, 0, 0, 1, 0, 0])  # last step of no_final is dropped
    assert len(data.rewards) == 8
    np.testing.assert_array_equal(data.episode_returns, [3.0, 3.0, 6.0])
    assert len(transitions_from_episodes([no_final], 3, 1, need_next=False).rewards) == 3  # BC keeps every step
    with pytest.raises(ValueError, match="observation size 3 and action size 1.*have 4 and 1"):
        transitions_from_episodes([terminal], 4, 1, need_next=False)
