"""Tests of tt_agents.data_loading.windows: window shapes and contents, stop-token padding, goal prefixes."""

from __future__ import annotations

from dataclasses import replace

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


def test_episode_maps_follow_their_windows_through_splits():
    maps = [np.full((3, 4), i, dtype=np.int64) for i in range(3)]
    episodes = [replace(make_episode(5 + i, False), map=maps[i]) for i in range(3)]
    data = TrajectoryData.from_episodes(episodes)
    assert [int(m[0, 0]) for m in data.maps] == [0, 1, 2]
    train, val = data.split(0.34, seed=0)
    assert len(train.maps) == train.n_episodes and len(val.maps) == val.n_episodes == 1
    windows = WindowDataset(data, RoundTokenizer(), sequence_length=2)
    batch = windows.batch_maps(torch.tensor([0, 5, 11, 17]))  # the first window of each episode, the last one
    assert batch.shape == (4, 3, 4) and batch.dtype == torch.int64
    assert batch[:, 0, 0].tolist() == [0, 1, 2, 2]
    assert (
        WindowDataset(TrajectoryData.from_episodes([make_episode(4, False)]), RoundTokenizer()).batch_maps(
            torch.tensor([0])
        )
        is None
    )
    with pytest.raises(ValueError, match=r"episode 1 has map shape None but episode 0 has \(3, 4\)"):
        TrajectoryData.from_episodes([episodes[0], make_episode(4, False)])
    with pytest.raises(ValueError, match=r"map must be non-negative integers, .* got float64 \(3, 4\)"):
        Episode(np.zeros((2, 2)), np.zeros((2, 1)), np.zeros(2), False, map=np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"one per step \(T = 2, H, W\), got int64 \(4, 3, 4\)"):
        Episode(np.zeros((2, 2)), np.zeros((2, 1)), np.zeros(2), False, map=np.zeros((4, 3, 4), np.int64))


def test_maps_that_change_give_each_window_the_map_of_its_first_step():
    # episode 0's map at step t is filled with t, episode 2's with 20 + t (given T + 1 rows: the last is dropped
    # like the final observation); episode 1 keeps one map (value 7)
    steps = np.arange(6)[:, None, None]
    episodes = [
        replace(make_episode(5, False), map=np.zeros((5, 3, 4), np.int64) + steps[:5]),
        replace(make_episode(3, False), map=np.full((3, 4), 7, np.int64)),
        replace(make_episode(4, False), map=np.full((5, 3, 4), 20, np.int64) + steps[:5]),
    ]
    assert episodes[2].map.shape == (4, 3, 4) and episodes[2].map_per_step and not episodes[1].map_per_step
    assert episodes[2].map_at(3)[0, 0] == 23 and episodes[1].map_at(2)[0, 0] == 7
    data = TrajectoryData.from_episodes(episodes)
    assert data.map_per_step
    windows = WindowDataset(data, RoundTokenizer(), sequence_length=2)
    assert windows.map_per_step and len(windows) == 12
    first_cells = windows.batch_maps(torch.arange(12))[:, 0, 0].tolist()
    assert first_cells == [0, 1, 2, 3, 4, 7, 7, 7, 20, 21, 22, 23]
    static = WindowDataset(TrajectoryData.from_episodes(episodes[1:2]), RoundTokenizer())
    assert not static.map_per_step and len(static.fingerprint_tensors()) == 4  # tokens, mask, starts, maps
    assert len(windows.fingerprint_tensors()) == 5  # and the map of every window


def test_load_episodes_reads_a_constant_map_from_dict_observations():
    from tt_agents.data_loading import load_episodes

    grid = np.arange(12).reshape(3, 4)
    observations = {"observation": np.zeros((4, 2)), "map": np.repeat(grid[None], 4, axis=0)}
    item = {"observations": observations, "actions": np.zeros((3, 1)), "rewards": np.zeros(3)}
    (episode,) = load_episodes([item], observation_key="observation", map_key="map")
    np.testing.assert_array_equal(episode.map, grid)
    assert load_episodes([item], observation_key="observation")[0].map is None
    changing = {**observations, "map": np.arange(48).reshape(4, 3, 4)}
    (moving,) = load_episodes([{**item, "observations": changing}], observation_key="observation", map_key="map")
    np.testing.assert_array_equal(moving.map, np.arange(36).reshape(3, 3, 4))  # a map per step, the final one off
    with pytest.raises(ValueError, match=r"must be \(H, W\) maps, got \(12,\) per step"):
        flat = {**observations, "map": np.zeros((4, 12), np.int64)}
        load_episodes([{**item, "observations": flat}], observation_key="observation", map_key="map")
    with pytest.raises(ValueError, match="map_key 'grid' is given but the observations have no such Dict entry"):
        load_episodes([item], observation_key="observation", map_key="grid")
