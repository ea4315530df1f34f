"""Tests of tt_agents.data_loading.minari_reading: Minari datasets and ids, unsupported spaces, offline ids."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

from tt_agents.data_loading import DatasetNotAvailableError, TrajectoryData, load_episodes, minari_reading
from tt_agents.data_making import record_dataset


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


class KitchenLikeEnv(PointGoalEnv):
    """FrankaKitchen's layout: goals are Dicts nested in the observation, one entry per task object."""

    def __init__(self) -> None:
        super().__init__()
        box = gymnasium.spaces.Box(-10.0, 10.0, (2,), np.float32)
        goal = gymnasium.spaces.Dict([("microwave", box), ("kettle", box)])  # a Sequence keeps this order
        self.observation_space = gymnasium.spaces.Dict([("observation", box), ("desired_goal", goal)])

    def _obs(self) -> dict:
        return {"observation": self.pos.copy(), "desired_goal": {"microwave": self.target, "kettle": -self.target}}


@pytest.fixture
def minari_home(tmp_path, monkeypatch):
    """A private, offline Minari datasets directory."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "datasets"


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


@pytest.mark.filterwarnings("ignore:env_spec is None")
def test_an_agent_reads_a_minari_dataset_of_nested_dict_observations_flattened_like_gymnasium(minari_home):
    from tt_agents.baselines import BCAgent

    env = KitchenLikeEnv()
    dataset = record_dataset(env, None, "test/kitchen-like/random-v0", n_episodes=2, show_progress=False)
    agent = BCAgent(dataset.observation_space, dataset.action_space, (8,), device="cpu")
    # Minari keeps the space with its keys sorted: the flattened row follows the dataset's space
    assert agent.observation_keys == (("desired_goal", "kettle"), ("desired_goal", "microwave"), "observation")
    episodes = load_episodes(dataset, observation_key=agent.observation_keys)
    minari_episode = next(dataset.iterate_episodes())
    flat = [
        gymnasium.spaces.flatten(
            dataset.observation_space,
            {
                "observation": minari_episode.observations["observation"][t],
                "desired_goal": {k: v[t] for k, v in minari_episode.observations["desired_goal"].items()},
            },
        )
        for t in range(len(minari_episode.rewards))
    ]
    np.testing.assert_allclose(episodes[0].observations, np.stack(flat))
    agent.fit(dataset, 5, show_progress=False)
    with pytest.raises(ValueError, match=r"without key\(s\) \['desired_goal/oven'\]"):
        load_episodes(dataset, observation_key=("observation", ("desired_goal", "oven")))


class MultiBinaryActions(gymnasium.Env):
    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def __init__(self, shape: tuple[int, ...] = (2,)) -> None:
        self.action_space = gymnasium.spaces.MultiBinary(shape)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 0.0, False, False, {}


def test_load_episodes_reads_discrete_actions_and_rejects_other_spaces(minari_home):
    dataset = record_dataset("CartPole-v1", None, "test/cartpole/random-v0", n_episodes=2, show_progress=False)
    episodes = load_episodes(dataset)
    for episode, minari_episode in zip(episodes, dataset.iterate_episodes(), strict=True):
        assert episode.discrete_actions and episode.actions.shape == (len(minari_episode.actions), 1)
        np.testing.assert_array_equal(episode.actions[:, 0], minari_episode.actions)
    binary = record_dataset(
        gymnasium.wrappers.TimeLimit(MultiBinaryActions(), 3), None, "test/multibinary/random-v0", n_episodes=1
    )
    (episode,) = load_episodes(binary)
    assert episode.actions.shape == (3, 2) and set(np.unique(episode.actions)) <= {0.0, 1.0}
    grid = record_dataset(
        gymnasium.wrappers.TimeLimit(MultiBinaryActions((2, 2)), 3), None, "test/multibinary2d/random-v0", n_episodes=1
    )
    with pytest.raises(ValueError, match=r"action space MultiBinary\(\(2, 2\)\).*1-D MultiDiscrete and MultiBinary"):
        load_episodes(grid)


def test_load_episodes_reads_discrete_observations_recorded_from_an_environment(minari_home):
    dataset = record_dataset("FrozenLake-v1", None, "test/frozenlake/random-v0", n_episodes=3, show_progress=False)
    for episode, minari_episode in zip(load_episodes(dataset), dataset.iterate_episodes(), strict=True):
        assert episode.discrete_observations and episode.observations.shape == (len(minari_episode.actions), 1)
        np.testing.assert_array_equal(episode.observations[:, 0], minari_episode.observations[:-1])
        assert episode.final_observation.tolist() == [minari_episode.observations[-1]]


def test_unknown_minari_id_offline_fails_without_touching_the_network_and_says_what_to_do(minari_home, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("the network was tried although the hub is offline")

    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(DatasetNotAvailableError) as info:
        load_episodes("nobody/nothing/bogus-v0")
    message = str(info.value)
    assert "'nobody/nothing/bogus-v0' is not available locally and could not be downloaded" in message
    assert str(minari_home) in message and "MINARI_DATASETS_PATH" in message
    assert "tt-agents make-dataset ENV LEVEL" in message and "record_dataset(" in message
    assert isinstance(info.value, FileNotFoundError) and info.value.__cause__ is None


@pytest.mark.parametrize(
    ("dataset_id", "problem"),
    [
        ("hopper medium", "not of that form"),
        ("test/pendulum/random", "no -vN version"),
        ("test/pendulum/random-v0 ", "leading or trailing spaces"),
    ],
)
def test_a_malformed_minari_id_is_named_as_such_without_a_download_and_a_close_local_one_is_suggested(
    minari_home, monkeypatch, dataset_id, problem
):
    import minari

    record_dataset("InvertedPendulum-v5", None, "test/pendulum/random-v0", n_episodes=2, seed=1, show_progress=False)

    def no_download(*args, **kwargs):
        raise AssertionError("a malformed id was looked up")

    monkeypatch.setattr(minari, "load_dataset", no_download)
    with pytest.raises(ValueError, match=problem) as info:
        load_episodes(dataset_id)
    assert f"{dataset_id!r} is not a Minari dataset id" in str(info.value)
    if dataset_id != "hopper medium":
        assert "Stored locally and similar: test/pendulum/random-v0." in str(info.value)


def test_a_missing_id_close_to_a_local_one_suggests_it(minari_home):
    record_dataset("InvertedPendulum-v5", None, "test/pendulum/random-v0", n_episodes=2, seed=1, show_progress=False)
    with pytest.raises(DatasetNotAvailableError, match="similar: test/pendulum/random-v0"):
        load_episodes("test/pendulum/random-v1")


def test_offline_hub_short_circuits_the_download(minari_home, monkeypatch):
    monkeypatch.setattr(minari_reading.importlib.util, "find_spec", lambda name: object())  # "hub installed"
    with pytest.raises(DatasetNotAvailableError, match="HF_HUB_OFFLINE is set"):
        load_episodes("nobody/nothing/bogus-v0")


def test_an_unreachable_hub_fails_before_any_download_attempt(minari_home, monkeypatch):
    import socket

    import minari

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(minari_reading.importlib.util, "find_spec", lambda name: object())  # "hub installed"

    def no_network(*args, **kwargs):
        raise OSError("Network is unreachable")

    real_load = minari.load_dataset

    def load_without_download(dataset_id, download=False):
        assert not download, "a download was attempted although the hub cannot be reached"
        return real_load(dataset_id)

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(minari, "load_dataset", load_without_download)
    with pytest.raises(DatasetNotAvailableError, match="huggingface.co cannot be reached"):
        load_episodes("nobody/nothing/bogus-v0")


def test_reference_scores_are_a_finite_pair_or_none() -> None:
    from tt_agents.data_loading import reference_scores_of

    assert reference_scores_of({"ref_min_score": -20, "ref_max_score": 3000.5}) == (-20.0, 3000.5)
    assert reference_scores_of({"ref_min_score": 0.0}) is None, "one of the two is not a reference"
    assert reference_scores_of({"ref_min_score": 0.0, "ref_max_score": float("nan")}) is None
