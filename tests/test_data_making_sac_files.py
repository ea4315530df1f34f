"""Tests of tt_agents.data_making.sac_files: SAC policies, training states and replay buffers without pickle."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from tt_agents._io import CheckpointError
from tt_agents.data_making import SACEvaluation, load_sac_policy, read_evaluations, train_sac
from tt_agents.data_making.sac_files import (
    load_sac_policy_folder,
    read_replay_buffer,
    restore_replay_buffer,
    restore_sac_state,
    save_replay_buffer,
    save_sac_policy,
    save_sac_state,
)

SB3 = pytest.importorskip("stable_baselines3")
TINY_SAC = {"learning_starts": 50, "batch_size": 32, "policy_kwargs": {"net_arch": [32, 32]}}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def no_unpickling(monkeypatch):
    """Any unpickling while active fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("something was unpickled")

    for module, name in ((pickle, "load"), (pickle, "loads"), (torch, "load")):
        monkeypatch.setattr(module, name, refuse)


def make_sac(steps: int = 0, net_arch: list[int] | None = None, buffer_size: int = 400, **kwargs):
    env = gym.make("InvertedPendulum-v5")
    sac_kwargs = {**TINY_SAC, "policy_kwargs": {"net_arch": net_arch or [32, 32]}, **kwargs}
    model = SB3.SAC("MlpPolicy", env, seed=0, device="cpu", buffer_size=buffer_size, **sac_kwargs)
    if steps:
        model.learn(steps)
    return model


def observations(n: int = 8) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32)


def test_a_policy_round_trips_with_nothing_unpickled(tmp_path, no_unpickling):
    model = make_sac(net_arch=[16, 8])
    save_sac_policy(model.policy, tmp_path / "policy")
    assert sorted(p.name for p in (tmp_path / "policy").iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_sac_policy_folder(tmp_path / "policy")
    expected = model.policy.predict(observations(), deterministic=True)[0]
    np.testing.assert_array_equal(loaded.predict(observations(), deterministic=True)[0], expected)
    assert loaded.net_arch == [16, 8] and not loaded.training


def test_an_actor_only_policy_acts_as_the_whole_one_at_a_fraction_of_the_size(tmp_path, no_unpickling):
    model = make_sac(steps=60)
    save_sac_policy(model.policy, tmp_path / "whole")
    save_sac_policy(model.policy, tmp_path / "actor", actor_only=True)
    sizes = {name: (tmp_path / name / "model.safetensors").stat().st_size for name in ("whole", "actor")}
    assert sizes["actor"] < sizes["whole"] / 3
    loaded = load_sac_policy_folder(tmp_path / "actor")
    for deterministic in (True, False):
        torch.manual_seed(1)
        expected = model.policy.predict(observations(), deterministic=deterministic)[0]
        torch.manual_seed(1)
        np.testing.assert_array_equal(loaded.predict(observations(), deterministic=deterministic)[0], expected)


def test_a_policy_with_a_custom_activation_is_refused_before_writing(tmp_path):
    class Custom(torch.nn.ReLU):
        pass

    model = make_sac(policy_kwargs={"net_arch": [8], "activation_fn": Custom})
    with pytest.raises(TypeError, match="cannot be stored"):
        save_sac_policy(model.policy, tmp_path / "policy")
    assert not (tmp_path / "policy").exists()


def test_a_folder_of_another_kind_is_not_a_policy(tmp_path):
    save_sac_state(make_sac(), tmp_path / "state")
    with pytest.raises(CheckpointError, match="sb3_sac_training_state, not a sb3_sac_policy"):
        load_sac_policy_folder(tmp_path / "state")


def test_a_training_state_restores_weights_optimizers_and_counters(tmp_path, no_unpickling):
    trained = make_sac(steps=120)
    save_sac_state(trained, tmp_path / "state")
    fresh = make_sac()
    restore_sac_state(fresh, tmp_path / "state")
    for key, value in trained.policy.state_dict().items():
        torch.testing.assert_close(fresh.policy.state_dict()[key], value, rtol=0, atol=0)
    for name in ("actor", "critic"):
        saved = getattr(trained, name).optimizer.state_dict()["state"]
        restored = getattr(fresh, name).optimizer.state_dict()["state"]
        assert saved.keys() == restored.keys() and len(saved) > 0
        for index in saved:
            torch.testing.assert_close(restored[index]["exp_avg"], saved[index]["exp_avg"], rtol=0, atol=0)
    torch.testing.assert_close(fresh.log_ent_coef, trained.log_ent_coef, rtol=0, atol=0)
    assert (fresh.num_timesteps, fresh._n_updates, fresh._episode_num) == (
        trained.num_timesteps,
        trained._n_updates,
        trained._episode_num,
    )
    fresh.learn(10, reset_num_timesteps=False)  # the restored optimizers step
    assert fresh.num_timesteps == 130


def test_a_training_state_of_other_network_sizes_is_a_clear_error(tmp_path):
    save_sac_state(make_sac(net_arch=[32, 32]), tmp_path / "state")
    with pytest.raises(CheckpointError, match="does not fit this SAC run"):
        restore_sac_state(make_sac(net_arch=[16]), tmp_path / "state")


def test_a_replay_buffer_round_trips_and_grows_unless_it_has_wrapped(tmp_path, no_unpickling):
    model = make_sac(steps=120, buffer_size=200)
    save_replay_buffer(model.replay_buffer, tmp_path / "buffer.npz")
    arrays = read_replay_buffer(tmp_path / "buffer.npz")
    assert len(arrays["observations"]) == 120 and arrays["position"] == 120 and not arrays["full"]
    bigger = make_sac(buffer_size=500).replay_buffer
    restore_replay_buffer(bigger, arrays)
    assert bigger.pos == 120 and not bigger.full
    np.testing.assert_array_equal(bigger.observations[:120], model.replay_buffer.observations[:120])
    np.testing.assert_array_equal(bigger.actions[:120], model.replay_buffer.actions[:120])

    wrapped = make_sac(steps=130, buffer_size=100)
    save_replay_buffer(wrapped.replay_buffer, tmp_path / "wrapped.npz")
    arrays = read_replay_buffer(tmp_path / "wrapped.npz")
    with pytest.raises(CheckpointError, match="does not fit"):
        restore_replay_buffer(make_sac(buffer_size=500).replay_buffer, arrays)
    same = make_sac(buffer_size=100).replay_buffer
    restore_replay_buffer(same, arrays)
    assert same.full and same.pos == 30


def test_a_file_that_is_not_a_replay_buffer_is_a_clear_error(tmp_path):
    (tmp_path / "buffer.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a readable replay buffer"):
        read_replay_buffer(tmp_path / "buffer.npz")
    np.savez(tmp_path / "payload.npz", observations=np.array([{"a": 1}], dtype=object))  # a pickled object array
    with pytest.raises(CheckpointError, match="not a readable replay buffer"):
        read_replay_buffer(tmp_path / "payload.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(CheckpointError, match="missing"):
        read_replay_buffer(tmp_path / "other.npz")


def test_a_sac_run_writes_and_resumes_without_pickle(tmp_path, no_unpickling):
    workdir = tmp_path / "run"
    kwargs = dict(seed=0, eval_every=100, eval_episodes=1, checkpoint_every=100, sac_kwargs=TINY_SAC)
    train_sac("InvertedPendulum-v5", 100, workdir, show_progress=False, **kwargs)
    train_sac("InvertedPendulum-v5", 200, workdir, show_progress=False, **kwargs)  # resumed
    suffixes = {path.suffix for path in Path(workdir).rglob("*") if path.is_file()}
    assert suffixes <= {".json", ".safetensors", ".npz"}, suffixes
    policy = load_sac_policy(workdir, read_evaluations(workdir)[-1])
    assert policy.predict(np.zeros(4, np.float32), deterministic=True)[0].shape == (1,)


def test_a_run_of_an_earlier_version_is_refused_with_what_to_do(tmp_path):
    workdir = tmp_path / "run"
    (workdir / "checkpoint").mkdir(parents=True)
    (workdir / "checkpoint" / "model.zip").write_bytes(b"")
    (workdir / "run.json").write_text(json.dumps({"env_id": "InvertedPendulum-v5", "seed": 0, "sac_kwargs": TINY_SAC}))
    with pytest.raises(CheckpointError, match="earlier tt_agents.*delete that folder"):
        train_sac("InvertedPendulum-v5", 200, workdir, show_progress=False, seed=0, sac_kwargs=TINY_SAC)
    legacy = SACEvaluation(step=100, mean_return=1.0, std_return=0.0, policy="policies/step_000000100.pt")
    with pytest.raises(CheckpointError, match="earlier tt_agents"):
        load_sac_policy(workdir, legacy)
