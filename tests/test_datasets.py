"""Tests of tt_agents.datasets: recording local Minari datasets and the scripted InvertedPendulum expert."""

from __future__ import annotations

import gymnasium
import minari
import numpy as np
import pytest

from tt_agents.datasets import (
    INVERTED_PENDULUM_MAX_RETURN,
    INVERTED_PENDULUM_RANDOM_RETURN,
    inverted_pendulum_policy,
    make_inverted_pendulum_dataset,
    record_dataset,
)


@pytest.fixture(autouse=True)
def minari_home(tmp_path, monkeypatch):
    """A private, offline Minari datasets directory for every test."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "datasets"


def episode_returns(dataset: minari.MinariDataset) -> np.ndarray:
    return np.array([episode.rewards.sum() for episode in dataset.iterate_episodes()])


def test_record_dataset_writes_a_reloadable_dataset_with_reference_scores(minari_home):
    dataset = record_dataset(
        "InvertedPendulum-v5",
        inverted_pendulum_policy(),
        "test/invertedpendulum/tiny-v0",
        n_episodes=3,
        max_episode_steps=50,
        ref_min_score=5.0,
        ref_max_score=50.0,
        description="tiny",
    )
    assert (minari_home / "test" / "invertedpendulum" / "tiny-v0" / "data").is_dir()
    reloaded = minari.load_dataset("test/invertedpendulum/tiny-v0")
    assert reloaded.total_episodes == 3 and reloaded.total_steps == 150
    metadata = reloaded.storage.metadata
    assert metadata["ref_min_score"] == 5.0 and metadata["ref_max_score"] == 50.0
    assert metadata["algorithm_name"] == "scripted" and metadata["description"] == "tiny"
    returns = episode_returns(reloaded)
    np.testing.assert_allclose(returns, 50.0)  # balanced until the time limit
    np.testing.assert_allclose(minari.get_normalized_score(reloaded, returns), 1.0)
    for episode in reloaded.iterate_episodes():
        assert episode.truncations[-1] and not episode.terminations.any()
        assert episode.observations.shape == (51, 4) and episode.actions.dtype == np.float32
    assert dataset.total_episodes == 3


def test_record_dataset_step_budget_and_seeding():
    kwargs = dict(n_steps=12, seed=7, show_progress=False)
    first = record_dataset("InvertedPendulum-v5", None, "test/ip/random-v0", **kwargs)
    second = record_dataset("InvertedPendulum-v5", None, "test/ip/random-v1", **kwargs)
    assert first.total_steps == 12
    last = list(first.iterate_episodes())[-1]
    assert last.terminations[-1] or last.truncations[-1]
    for a, b in zip(first.iterate_episodes(), second.iterate_episodes(), strict=True):
        np.testing.assert_array_equal(a.observations, b.observations)
        np.testing.assert_array_equal(a.actions, b.actions)
    third = record_dataset("InvertedPendulum-v5", None, "test/ip/random-v2", n_steps=12, seed=8, show_progress=False)
    assert not np.array_equal(next(third.iterate_episodes()).actions, next(first.iterate_episodes()).actions)


def test_record_dataset_existing_id_and_overwrite():
    record_dataset("Pendulum-v1", None, "test/pendulum/random-v0", n_steps=5, show_progress=False)
    with pytest.raises(FileExistsError, match="already exists.*overwrite=True"):
        record_dataset("Pendulum-v1", None, "test/pendulum/random-v0", n_steps=5, show_progress=False)
    replaced = record_dataset(
        "Pendulum-v1", None, "test/pendulum/random-v0", n_steps=8, overwrite=True, show_progress=False
    )
    assert replaced.total_steps == 8
    assert minari.load_dataset("test/pendulum/random-v0").total_steps == 8


def test_record_dataset_argument_errors():
    with pytest.raises(ValueError, match="n_episodes and/or n_steps"):
        record_dataset("Pendulum-v1", None, "test/pendulum/random-v0")
    with pytest.raises(ValueError, match="malformed dataset id"):
        record_dataset("Pendulum-v1", None, "test/pendulum/no version", n_steps=5)
    with pytest.raises(ValueError, match="needs ref_max_score"):
        record_dataset("Pendulum-v1", None, "test/pendulum/random-v0", n_steps=5, ref_min_score=0.0)


def test_record_dataset_leaves_a_given_env_open_and_calls_policy_reset():
    class CountingPolicy:
        resets = 0

        def reset(self) -> None:
            self.resets += 1

        def __call__(self, observation: np.ndarray) -> np.ndarray:
            return np.zeros(1, np.float32)

    env = gymnasium.make("Pendulum-v1", max_episode_steps=4)
    policy = CountingPolicy()
    dataset = record_dataset(env, policy, "test/pendulum/zero-v0", n_episodes=3, show_progress=False)
    assert dataset.total_steps == 12 and policy.resets == 3
    env.reset(seed=0)  # still usable
    env.close()


def test_inverted_pendulum_expert_balances_for_the_full_episode():
    env = gymnasium.make("InvertedPendulum-v5")
    for seed in range(3):
        policy, (observation, _) = inverted_pendulum_policy(noise=0.0), env.reset(seed=100 + seed)
        episode_return, done = 0.0, False
        while not done:
            action = policy(observation)
            assert action.shape == (1,) and action.dtype == np.float32 and -3 <= action[0] <= 3
            observation, reward, terminated, truncated, _ = env.step(action)
            episode_return += reward
            done = terminated or truncated
        assert not terminated and episode_return == 1000.0
    env.close()
    assert inverted_pendulum_policy(noise=1.0)(np.zeros((5, 4))).shape == (5, 1)  # batched observations
    with pytest.raises(ValueError, match="noise"):
        inverted_pendulum_policy(noise=-1.0)


def test_make_inverted_pendulum_datasets():
    expert = make_inverted_pendulum_dataset("expert", n_episodes=2, show_progress=False)
    assert expert.id == "tt-agents/invertedpendulum/expert-v0"
    np.testing.assert_allclose(episode_returns(expert), 1000.0)
    assert expert.storage.metadata["ref_min_score"] == INVERTED_PENDULUM_RANDOM_RETURN
    assert expert.storage.metadata["ref_max_score"] == INVERTED_PENDULUM_MAX_RETURN

    mixed = make_inverted_pendulum_dataset("mixed", n_episodes=8, seed=1, show_progress=False)
    returns = episode_returns(mixed)
    np.testing.assert_allclose(returns[::2], 1000.0)  # even episodes: the expert
    assert returns[1::2].min() < 500  # odd episodes: the noisy controller fails early
    normalized = minari.get_normalized_score(mixed, returns)
    assert 0.0 < normalized.mean() < 1.0
    with pytest.raises(FileExistsError):
        make_inverted_pendulum_dataset("mixed", n_episodes=2, seed=1, show_progress=False)
    with pytest.raises(ValueError, match="level"):
        make_inverted_pendulum_dataset("medium", n_episodes=2)  # type: ignore[arg-type]
