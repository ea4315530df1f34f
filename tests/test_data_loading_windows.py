"""Tests of tt_agents.data_loading.windows: window shapes and contents, stop-token padding, goal prefixes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_data_loading_episodes import make_episode

from tt_agents.config import DataConfig
from tt_agents.data_loading import Episode, TrajectoryData, WindowDataset


class RoundTokenizer:
    """Stand-in tokenizer: token = value rounded and clipped to [0, n_bins - 1], whatever the column."""

    n_bins = 10

    def encode(self, x: np.ndarray, columns: slice | None = None) -> np.ndarray:
        return np.clip(np.rint(np.asarray(x)), 0, self.n_bins - 1).astype(np.int64)


def test_windows_shapes_and_contents():
    data = TrajectoryData.from_episodes([make_episode(6, False), make_episode(4, False, start=1)])
    windows = WindowDataset(data, RoundTokenizer(), sequence_length=3)
    d = data.layout.transition_dim
    assert len(windows) == 10 and windows.sequence_tokens == 3 * d
    tokens, mask = windows[0]
    assert tokens.shape == (3 * d,) and tokens.dtype == torch.int64
    assert mask.shape == (3 * d,) and mask.dtype == torch.float32
    expected = RoundTokenizer().encode(data.joined[0][:3]).reshape(-1)
    np.testing.assert_array_equal(tokens.numpy(), expected)
    assert mask.eq(1).all()
    tokens, _ = windows[6]  # episode 1, start 0
    np.testing.assert_array_equal(tokens.numpy(), RoundTokenizer().encode(data.joined[1][:3]).reshape(-1))
    batch_tokens, batch_mask = next(iter(torch.utils.data.DataLoader(windows, batch_size=4)))
    assert batch_tokens.shape == (4, 3 * d) and batch_mask.shape == (4, 3 * d)


@pytest.mark.parametrize("terminated", [True, False])
def test_padding_is_stop_token_trained_only_after_a_terminal(terminated):
    data = TrajectoryData.from_episodes([make_episode(3, terminated)], DataConfig(termination_penalty=None))
    windows = WindowDataset(data, RoundTokenizer(), sequence_length=4)
    d, stop = data.layout.transition_dim, RoundTokenizer.n_bins
    tokens, mask = windows[1]  # steps 1, 2 real; two padded transitions
    tokens, mask = tokens.view(4, d), mask.view(4, d)
    np.testing.assert_array_equal(tokens[:2].numpy(), RoundTokenizer().encode(data.joined[0][1:]))
    assert tokens[2:].eq(stop).all() and (tokens[:2] < stop).all()
    assert mask[:2].eq(1).all()
    assert mask[2:].eq(1.0 if terminated else 0.0).all()


def test_episode_shorter_than_window():
    data = TrajectoryData.from_episodes([make_episode(2, True), make_episode(1, False)])
    windows = WindowDataset(data, RoundTokenizer(), sequence_length=10)
    d = data.layout.transition_dim
    assert len(windows) == 3
    tokens, mask = windows[2]  # the one-step truncated episode
    assert tokens.shape == (10 * d,)
    assert tokens[d:].eq(RoundTokenizer.n_bins).all() and mask[:d].eq(1).all() and mask[d:].eq(0).all()
    tokens, mask = windows[0]
    assert tokens[2 * d :].eq(RoundTokenizer.n_bins).all() and mask.eq(1).all()


def test_goal_prefix_has_mask_zero():
    episodes = [make_episode(3, False), make_episode(2, True)]
    episodes[0].goal, episodes[1].goal = np.array([5.0, 6.0]), np.array([7.0, 8.0])
    episodes = [Episode(e.observations, e.actions, e.rewards, e.terminated, goal=e.goal) for e in episodes]
    data = TrajectoryData.from_episodes(episodes)
    windows = WindowDataset(data, RoundTokenizer(), sequence_length=2)
    d = data.layout.transition_dim
    assert windows.sequence_tokens == 2 + 2 * d
    tokens, mask = windows[4]  # episode 1, start 1
    assert tokens.shape == (2 + 2 * d,) and mask.shape == (2 + 2 * d,)
    assert tokens[:2].tolist() == [7, 8] and mask[:2].eq(0).all()
    assert mask[2:].eq(1).all()  # one real transition, then stop tokens after a terminal
    assert windows[0][0][:2].tolist() == [5, 6]


def test_windows_with_the_real_tokenizer():
    tokenizer_module = pytest.importorskip("tt_agents.tokenizer")
    episodes = [make_episode(5, True), make_episode(4, False, start=2)]
    episodes[0].goal, episodes[1].goal = np.array([1.0]), np.array([2.0])
    episodes = [Episode(e.observations, e.actions, e.rewards, e.terminated, goal=e.goal) for e in episodes]
    data = TrajectoryData.from_episodes(episodes)
    tokenizer = tokenizer_module.Tokenizer(n_bins=4).fit(data.token_columns())
    windows = WindowDataset(data, tokenizer, sequence_length=3)
    tokens, mask = windows[3]
    assert tokens.shape == (1 + 3 * data.layout.transition_dim,)
    assert tokens.min() >= 0 and tokens.max() <= 4 and tokens[-1] == 4 and mask[0] == 0
