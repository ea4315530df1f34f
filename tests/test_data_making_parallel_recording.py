"""Tests of tt_agents.data_making.parallel_recording: episodes with seeds of their own, recorded by several
processes, give the same dataset for any number of them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from tt_agents.data_making import DatasetBudget, make_locomotion_dataset, record_dataset
from tt_agents.data_making.parallel_recording import episode_noise_seed, episode_reset_seeds, record_episodes


@pytest.fixture(autouse=True)
def minari_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "datasets"


class NoisyTorchPolicy:
    """Draws its actions from torch's global generator, as SB3's stochastic policies do; counts resets."""

    def __init__(self) -> None:
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        return (torch.rand(1) * 4.0 - 2.0).numpy()


def assert_same_episodes(first, second) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.observations, b.observations)
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.rewards, b.rewards)
        np.testing.assert_array_equal(a.terminations, b.terminations)
        np.testing.assert_array_equal(a.truncations, b.truncations)


def test_one_and_two_workers_record_the_same_dataset_cut_at_the_step_limit():
    kwargs = dict(n_steps=450, seed=5, show_progress=False, ref_min_score=-1500.0, ref_max_score=0.0)
    one = record_dataset("Pendulum-v1", NoisyTorchPolicy(), "test/pendulum/w1-v0", workers=1, **kwargs)
    two = record_dataset("Pendulum-v1", NoisyTorchPolicy(), "test/pendulum/w2-v0", workers=2, **kwargs)
    first, second = list(one.iterate_episodes()), list(two.iterate_episodes())
    assert_same_episodes(first, second)
    assert [len(e.actions) for e in first] == [200, 200, 50]  # Pendulum's time limit, then the cut
    assert first[-1].truncations[-1] and not first[-1].truncations[:-1].any()
    seeds = episode_reset_seeds(5)
    assert [m["seed"] for m in one.storage.get_episode_metadata([0, 1, 2])] == [next(seeds) for _ in range(3)]
    assert one.storage.metadata["ref_max_score"] == 0.0
    assert not np.array_equal(first[0].actions[:20], first[1].actions[:20])  # episodes draw different noise


def test_each_episode_is_seeded_by_itself_and_the_policy_is_reset_at_every_start():
    policy = NoisyTorchPolicy()
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    episodes = record_episodes("Pendulum-v1", policy, workers=1, n_episodes=2, seed=3, show_progress=False)
    assert torch.equal(torch.rand(1), before)  # the caller's generator is left as it was
    assert policy.resets == 2 and [e.id for e in episodes] == [0, 1]
    torch.manual_seed(episode_noise_seed(3, 1))
    first_noise = float(torch.rand(1) * 4.0 - 2.0)
    assert episodes[1].actions[0, 0] == pytest.approx(first_noise)
    assert episode_noise_seed(3, 1) != episode_noise_seed(3, 0) != episode_noise_seed(4, 0)
    alone = record_episodes("Pendulum-v1", NoisyTorchPolicy(), workers=1, n_episodes=1, seed=3, show_progress=False)
    assert_same_episodes(alone, episodes[:1])


def test_bad_worker_settings_are_refused_before_anything_is_written(minari_home):
    with pytest.raises(ValueError, match="cannot be sent"):
        record_dataset("Pendulum-v1", lambda obs: np.zeros(1), "test/pendulum/l-v0", n_steps=5, workers=2)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        record_dataset("Pendulum-v1", None, "test/pendulum/z-v0", n_steps=5, workers=0, show_progress=False)
    with pytest.raises(ValueError, match="recording_workers"):
        DatasetBudget(sac_steps_medium=1, sac_steps_expert=5, recording_workers=0)
    assert not (minari_home / "test").exists()


def test_a_shipped_policy_level_recorded_by_workers_is_the_same_for_any_count(tmp_path, one_torch_thread):
    budget = replace(DatasetBudget.cpu(), dataset_steps=300)
    made = {
        workers: make_locomotion_dataset(
            "hopper",
            "medium",
            budget=replace(budget, recording_workers=workers),
            workdir=tmp_path / "sac",
            dataset_id=f"test/hopper/w{workers}-v0",
            show_progress=False,
        )
        for workers in (1, 2)
    }
    one, two = (list(made[w].iterate_episodes()) for w in (1, 2))
    assert_same_episodes(one, two)
    assert sum(len(e.actions) for e in one) == 300 and not (tmp_path / "sac").exists()
    assert np.abs(np.concatenate([e.actions for e in one])).max() <= 1.0
