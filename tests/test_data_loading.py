"""Tests of tt_agents.data_loading: episodes, reward-to-go, splits, windows, loading from Minari and arrays."""

from __future__ import annotations

import time

import gymnasium
import numpy as np
import pytest
import torch

from tt_agents import data_loading as data_module
from tt_agents.config import DataConfig
from tt_agents.data_loading import (
    DatasetNotAvailableError,
    Episode,
    TrajectoryData,
    WindowDataset,
    load_episodes,
    relabelled_prefixes,
    reward_to_go,
)
from tt_agents.data_making import record_dataset


class RoundTokenizer:
    """Stand-in tokenizer: token = value rounded and clipped to [0, n_bins - 1], whatever the column."""

    n_bins = 10

    def encode(self, x: np.ndarray, columns: slice | None = None) -> np.ndarray:
        return np.clip(np.rint(np.asarray(x)), 0, self.n_bins - 1).astype(np.int64)


class PointGoalEnv(gymnasium.Env):
    """A 2-D point with gymnasium-robotics style Dict observations; episodes end after 4 steps."""

    def __init__(self) -> None:
        box = gymnasium.spaces.Box(-10.0, 10.0, (2,), np.float32)
        self.observation_space = gymnasium.spaces.Dict(observation=box, achieved_goal=box, desired_goal=box)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def _obs(self) -> dict[str, np.ndarray]:
        return {"observation": self.pos.copy(), "achieved_goal": self.pos.copy(), "desired_goal": self.target}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        self.target = np.ones(2, np.float32)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.pos = (self.pos + 0.5 * np.asarray(action, np.float32)).astype(np.float32)
        self.t += 1
        return self._obs(), -float(np.linalg.norm(self.pos - self.target)), False, self.t >= 4, {}


@pytest.fixture
def minari_home(tmp_path, monkeypatch):
    """A private, offline Minari datasets directory."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "datasets"


def make_episode(n_steps: int, terminated: bool, obs_dim: int = 2, act_dim: int = 1, start: float = 0.0) -> Episode:
    values = start + np.arange(n_steps, dtype=np.float32)
    return Episode(
        observations=np.repeat(values[:, None], obs_dim, axis=1),
        actions=np.repeat(values[:, None], act_dim, axis=1),
        rewards=np.ones(n_steps, np.float32),
        terminated=terminated,
    )


# ------------------------------------------------------------------------------------ reward-to-go / penalty


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


# ------------------------------------------------------------------------------------ split


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


# ------------------------------------------------------------------------------------ windows


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


# ------------------------------------------------------------------------------------ validation of input


def test_episode_validation_errors():
    obs, act, rew = np.zeros((4, 2)), np.zeros((4, 1)), np.zeros(4)
    with pytest.raises(ValueError, match="rewards contain NaN or inf at step 2"):
        Episode(obs, act, np.array([0.0, 0.0, np.nan, 0.0]), False)
    with pytest.raises(ValueError, match="observations contain NaN or inf"):
        Episode(np.full((4, 2), np.inf), act, rew, False)
    with pytest.raises(ValueError, match="observations have 3 rows but rewards have 4 steps"):
        Episode(obs[:3], act, rew, False)
    with pytest.raises(ValueError, match=r"actions must have shape \(T, action_dim\)"):
        Episode(obs, act[:2], rew, False)
    with pytest.raises(ValueError, match="non-flat observations"):
        Episode(np.zeros((4, 2, 2)), act, rew, False)
    with pytest.raises(ValueError, match="discrete action spaces are not supported"):
        Episode(obs, np.zeros((4, 1), dtype=np.int64), rew, False)
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


# ------------------------------------------------------------------------------------ load_episodes


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


def test_load_episodes_from_minari_dataset_and_id(minari_home):
    dataset = record_dataset(
        "InvertedPendulum-v5", None, "test/pendulum/random-v0", n_episodes=3, seed=1, show_progress=False
    )
    from_object = load_episodes(dataset)
    from_id = load_episodes("test/pendulum/random-v0")
    assert len(from_object) == len(from_id) == 3
    for episode, minari_episode, again in zip(from_object, dataset.iterate_episodes(), from_id, strict=True):
        assert episode.observations.shape == (len(minari_episode), 4) and episode.actions.shape[1] == 1
        np.testing.assert_allclose(episode.final_observation, minari_episode.observations[-1], rtol=1e-6)
        np.testing.assert_allclose(episode.rewards, minari_episode.rewards)
        assert episode.terminated and minari_episode.terminations[-1]  # random actions: the pole falls
        np.testing.assert_array_equal(episode.observations, again.observations)
    data = TrajectoryData.from_episodes(from_object)
    assert data.layout.observation_dim == 4 and data.layout.action_dim == 1


@pytest.mark.filterwarnings("ignore:env_spec is None")
def test_load_episodes_from_minari_dict_observations(minari_home):
    dataset = record_dataset(PointGoalEnv(), None, "test/point/random-v0", n_episodes=2, show_progress=False)
    episodes = load_episodes(dataset, goal_key="achieved_goal")
    assert len(episodes) == 2
    for episode, minari_episode in zip(episodes, dataset.iterate_episodes(), strict=True):
        assert episode.observations.shape == (4, 2) and not episode.terminated
        np.testing.assert_allclose(episode.goal, minari_episode.observations["achieved_goal"][-1])
        np.testing.assert_allclose(episode.final_observation, episode.goal)
    assert TrajectoryData.from_episodes(episodes).layout.goal_dim == 2
    with pytest.raises(ValueError, match=r"without key\(s\) \['state'\]; available keys"):
        load_episodes(dataset, observation_key="state")
    whole = load_episodes(dataset, observation_key=("desired_goal", "observation"))  # concatenated in that order
    for episode, minari_episode in zip(whole, dataset.iterate_episodes(), strict=True):
        expected = np.concatenate(
            [minari_episode.observations["desired_goal"], minari_episode.observations["observation"]], 1
        )
        np.testing.assert_allclose(episode.observations, expected[:-1])
        np.testing.assert_allclose(episode.final_observation, expected[-1])


def test_load_episodes_rejects_discrete_actions(minari_home):
    dataset = record_dataset("CartPole-v1", None, "test/cartpole/random-v0", n_episodes=1, show_progress=False)
    with pytest.raises(ValueError, match=r"action space Discrete\(2\).*continuous"):
        load_episodes(dataset)


def test_unknown_minari_id_offline_fails_fast_with_help(minari_home):
    start = time.perf_counter()
    with pytest.raises(DatasetNotAvailableError) as info:
        load_episodes("nobody/nothing/bogus-v0")
    assert time.perf_counter() - start < 5
    message = str(info.value)
    assert "'nobody/nothing/bogus-v0' is not available locally and could not be downloaded" in message
    assert str(minari_home) in message and "MINARI_DATASETS_PATH" in message
    assert "tt-agents make-dataset ENV LEVEL" in message and "record_dataset(" in message
    assert isinstance(info.value, FileNotFoundError) and info.value.__cause__ is None


def test_offline_hub_short_circuits_the_download(minari_home, monkeypatch):
    monkeypatch.setattr(data_module.importlib.util, "find_spec", lambda name: object())  # "hub installed"
    with pytest.raises(DatasetNotAvailableError, match="HF_HUB_OFFLINE is set"):
        load_episodes("nobody/nothing/bogus-v0")
