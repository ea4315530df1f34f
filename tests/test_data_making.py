"""Tests of tt_agents.data_making: recording local Minari datasets, the scripted InvertedPendulum expert, SAC runs
and the D4RL-style locomotion levels."""

from __future__ import annotations

import json
import os

import gymnasium
import minari
import numpy as np
import pytest
import torch

from tt_agents.data_loading import load_episodes
from tt_agents.data_making import (
    D4RL_REFERENCE_SCORES,
    INVERTED_PENDULUM_MAX_RETURN,
    INVERTED_PENDULUM_RANDOM_RETURN,
    LOCOMOTION_LEVELS,
    DatasetBudget,
    SACEvaluation,
    check_dataset_id,
    inverted_pendulum_policy,
    load_sac_policy,
    locomotion_dataset_id,
    make_inverted_pendulum_dataset,
    make_locomotion_dataset,
    medium_target_return,
    read_evaluations,
    record_dataset,
    replay_buffer_episodes,
    resolve_env_id,
    sac_run_dir,
    summarize_dataset,
    train_sac,
)
from tt_agents.data_making.sac_files import read_replay_buffer


def _shipped_policies():
    from tt_agents.data_making.data_policies import shipped_policies

    return shipped_policies()


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


def test_an_overwrite_that_fails_keeps_the_old_dataset_and_leaves_no_debris(minari_home):
    record_dataset("Pendulum-v1", None, "test/pendulum/random-v0", n_steps=5, show_progress=False)

    def failing_policy(observation):
        raise RuntimeError("killed while recording")

    with pytest.raises(RuntimeError, match="killed while recording"):
        record_dataset(
            "Pendulum-v1", failing_policy, "test/pendulum/random-v0", n_steps=8, overwrite=True, show_progress=False
        )
    assert minari.load_dataset("test/pendulum/random-v0").total_steps == 5
    assert sorted(p.name for p in minari_home.iterdir()) == ["test"], "no staging or temporary folder is left"
    assert "MINARI_DATASETS_PATH" in os.environ and os.environ["MINARI_DATASETS_PATH"] == str(minari_home)


def test_a_write_killed_between_the_renames_of_its_swap_is_put_back_by_the_next_write(minari_home):
    record_dataset("Pendulum-v1", None, "test/pendulum/random-v0", n_steps=5, show_progress=False)
    staging = minari_home / ".tt_agents-dataset-999999999-abc"  # left by a process that no longer exists
    staging.mkdir()
    (staging / ".dataset_id").write_text("test/pendulum/random-v0")
    os.replace(minari_home / "test/pendulum/random-v0", staging / ".replaced")  # the kill: the old one is aside
    record_dataset("Pendulum-v1", None, "test/pendulum/other-v0", n_steps=3, show_progress=False)
    assert minari.load_dataset("test/pendulum/random-v0").total_steps == 5
    assert not staging.exists()


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


def test_check_dataset_id_is_shared_by_every_maker(minari_home):
    assert check_dataset_id("test/pendulum/random-v0", overwrite=False) == minari_home / "test/pendulum/random-v0"
    with pytest.raises(ValueError, match="malformed dataset id"):
        check_dataset_id("no-version", overwrite=True)
    record_dataset("Pendulum-v1", None, "test/pendulum/random-v0", n_steps=5, show_progress=False)
    with pytest.raises(FileExistsError, match="already exists.*overwrite=True"):
        check_dataset_id("test/pendulum/random-v0", overwrite=False)
    assert check_dataset_id("test/pendulum/random-v0", overwrite=True).is_dir()
    with pytest.raises(ValueError, match="malformed dataset id"):
        make_locomotion_dataset("Pendulum-v1", "random", dataset_id="bad id", show_progress=False)


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
    np.testing.assert_allclose(returns[::4], 1000.0)  # one episode in four: the expert
    others = np.delete(returns, np.s_[::4])
    assert others.max() < 600  # the others: the cart drifts off and the pole falls
    normalized = minari.get_normalized_score(mixed, returns)
    assert 0.0 < normalized.mean() < 1.0
    with pytest.raises(FileExistsError):
        make_inverted_pendulum_dataset("mixed", n_episodes=2, seed=1, show_progress=False)
    with pytest.raises(ValueError, match="level"):
        make_inverted_pendulum_dataset("medium", n_episodes=2)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ D4RL-style SAC datasets

TINY_SAC = {"learning_starts": 50, "batch_size": 32, "policy_kwargs": {"net_arch": [32, 32]}}


@pytest.fixture
def one_thread():
    """Torch on one thread: tiny networks are much slower with thread contention on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_budget(**changes) -> DatasetBudget:
    values = dict(
        sac_steps_medium=300,
        sac_steps_expert=400,
        dataset_steps=150,
        eval_episodes=2,
        eval_every=100,
        checkpoint_every=100,
        sac_kwargs=TINY_SAC,
    )
    return DatasetBudget(**{**values, **changes})


def load_buffer(run_dir):
    return read_replay_buffer(run_dir / "checkpoint" / "replay_buffer.npz")


def test_budget_presets_and_validation():
    cpu, paper = DatasetBudget.cpu(), DatasetBudget.paper()
    assert paper.sac_steps_expert == 1_000_000 and paper.dataset_steps == 1_000_000
    assert cpu.sac_steps_medium <= cpu.sac_steps_expert < paper.sac_steps_expert
    assert cpu.dataset_steps < paper.dataset_steps and cpu.medium_target_fraction == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="sac_steps_medium"):
        DatasetBudget(sac_steps_medium=10, sac_steps_expert=5)
    with pytest.raises(ValueError, match="medium_target_fraction"):
        DatasetBudget(sac_steps_medium=1, sac_steps_expert=5, medium_target_fraction=1.5)
    with pytest.raises(ValueError, match="JSON"):
        DatasetBudget(sac_steps_medium=1, sac_steps_expert=5, sac_kwargs={"f": object()})


def test_env_names_and_dataset_ids(tmp_path):
    assert resolve_env_id("hopper") == "Hopper-v5" and resolve_env_id("HalfCheetah") == "HalfCheetah-v5"
    assert resolve_env_id("walker2d") == "Walker2d-v5" and resolve_env_id("ant") == "Ant-v5"
    assert resolve_env_id("Pendulum-v1") == "Pendulum-v1"
    with pytest.raises(ValueError, match="unknown environment"):
        resolve_env_id("NoSuchEnv-v0")
    assert locomotion_dataset_id("Hopper-v5", "medium") == "tt-agents/hopper/medium-v0"
    assert locomotion_dataset_id("halfcheetah", "medium-replay") == "tt-agents/halfcheetah/medium-replay-v0"
    with pytest.raises(ValueError, match="level"):
        locomotion_dataset_id("hopper", "mixed")
    assert sac_run_dir("hopper", 3, tmp_path) == tmp_path / "Hopper-v5" / "seed3"
    assert medium_target_return(-20.272305, 3234.3, 1 / 3) == pytest.approx(1064.6, abs=0.1)
    assert D4RL_REFERENCE_SCORES["Hopper-v5"] == (-20.272305, 3234.3)


def test_replay_buffer_episodes_split_at_dones_timeouts_and_resets():
    obs = np.arange(8, dtype=np.float64)[:, None]  # (8, 1)
    nxt = obs + 1
    nxt[2] = 99.0  # terminal observation of episode 1 (done at step 2)
    nxt[4] = 98.0  # time-limit end of episode 2
    nxt[5] = 50.0  # a reset without a done (resumed run): episode 3 ends truncated
    dones = np.array([0, 0, 1, 0, 1, 0, 0, 0], dtype=np.float32)
    timeouts = np.array([0, 0, 0, 0, 1, 0, 0, 0], dtype=np.float32)
    episodes = replay_buffer_episodes(obs, nxt, obs * 10, obs * 2, dones, timeouts)
    assert [len(e["rewards"]) for e in episodes] == [3, 2, 1, 2]
    assert [bool(e["terminations"][-1]) for e in episodes] == [True, False, False, False]
    assert [bool(e["truncations"][-1]) for e in episodes] == [False, True, True, True]
    np.testing.assert_array_equal(episodes[0]["observations"][:, 0], [0, 1, 2, 99])
    np.testing.assert_array_equal(episodes[3]["observations"][:, 0], [6, 7, 8])
    np.testing.assert_array_equal(episodes[1]["actions"][:, 0], [30, 40])
    for episode in episodes:
        assert not (episode["terminations"][:-1].any() or episode["truncations"][:-1].any())


def test_train_sac_stops_at_target_and_resumes_from_its_checkpoint(tmp_path, one_thread):
    workdir = tmp_path / "run"
    kwargs = dict(seed=0, eval_every=100, eval_episodes=2, checkpoint_every=100, sac_kwargs=TINY_SAC)
    train_sac("InvertedPendulum-v5", 400, workdir, target_return=-1e9, show_progress=False, **kwargs)
    assert [e.step for e in read_evaluations(workdir)] == [100]  # stopped at the first evaluation
    first = load_buffer(workdir)
    assert first["position"] == 100

    # a stale evaluation written after the last checkpoint (a crash) is dropped on resume
    stale = json.loads((workdir / "evaluations.json").read_text())
    stale.append({"step": 150, "mean_return": 1.0, "std_return": 0.0, "policy": "policies/missing.pt"})
    (workdir / "evaluations.json").write_text(json.dumps(stale))

    train_sac("InvertedPendulum-v5", 250, workdir, show_progress=False, **kwargs)
    evaluations = read_evaluations(workdir)
    assert [e.step for e in evaluations] == [100, 200, 250]  # continued, with a final evaluation
    assert all((workdir / e.policy).exists() for e in evaluations)
    resumed = load_buffer(workdir)
    assert resumed["position"] == 250 and resumed["buffer_size"] >= 250
    np.testing.assert_array_equal(resumed["observations"][:100], first["observations"][:100])  # not restarted
    np.testing.assert_array_equal(resumed["actions"][:100], first["actions"][:100])
    assert json.loads((workdir / "checkpoint" / "state.json").read_text()) == {"num_timesteps": 250}
    policy = load_sac_policy(workdir, evaluations[-1])
    assert policy.predict(np.zeros(4, np.float32), deterministic=True)[0].shape == (1,)

    train_sac("InvertedPendulum-v5", 250, workdir, show_progress=False, **kwargs)  # already there: no-op
    assert len(read_evaluations(workdir)) == 3
    with pytest.raises(ValueError, match="holds a SAC run"):
        train_sac("InvertedPendulum-v5", 300, workdir, show_progress=False, **{**kwargs, "seed": 1})


def test_make_locomotion_dataset_all_levels(tmp_path, one_thread, minari_home):
    budget, workdir = tiny_budget(), tmp_path / "sac"
    env = "InvertedPendulum-v5"
    datasets = {
        level: make_locomotion_dataset(env, level, budget=budget, workdir=workdir, show_progress=False)
        for level in ("medium", "medium-replay", "expert", "random", "medium-expert")
    }
    run_dir = sac_run_dir(env, 0, workdir)
    evaluations = read_evaluations(run_dir)
    assert evaluations[-1].step == 400  # the expert run
    ref_min = json.loads((run_dir / "random_return.json").read_text())["mean_return"]
    ref_max = evaluations[-1].mean_return

    for level, dataset in datasets.items():
        reloaded = minari.load_dataset(f"tt-agents/invertedpendulum/{level}-v0")
        metadata = reloaded.storage.metadata
        assert metadata["ref_min_score"] == pytest.approx(ref_min), level
        assert metadata["ref_max_score"] == pytest.approx(ref_max), level
        summary = summarize_dataset(reloaded)
        assert summary.normalized_score is not None and np.isfinite(summary.normalized_score)
        assert load_episodes(reloaded)[0].observations.shape[1] == 4
        assert dataset.total_steps == reloaded.total_steps
    for level in ("random", "medium", "expert"):
        assert datasets[level].total_steps == budget.dataset_steps
    assert "partially trained" in datasets["expert"].storage.metadata["description"]

    # medium: the evaluation closest to the target up to the first reaching it, within sac_steps_medium
    target = medium_target_return(ref_min, ref_max, budget.medium_target_fraction)
    candidates = [e for e in evaluations if e.step <= budget.sac_steps_medium]
    first = next((i for i, e in enumerate(candidates) if e.mean_return >= target), len(candidates) - 1)
    medium = min(candidates[: first + 1], key=lambda e: abs(e.mean_return - target))
    assert f"checkpoint at {medium.step} environment steps" in datasets["medium"].storage.metadata["description"]

    # medium-replay: the replay buffer's first `medium.step` transitions, actions back in env units
    replay = datasets["medium-replay"]
    assert replay.total_steps == medium.step
    buffer = load_buffer(run_dir)
    episodes = list(replay.iterate_episodes())
    n = len(episodes[0].rewards)
    np.testing.assert_allclose(episodes[0].observations[:n], buffer["observations"][:n, 0])
    np.testing.assert_allclose(episodes[0].actions, 3.0 * buffer["actions"][:n, 0], rtol=1e-6)
    rewards = np.concatenate([e.rewards for e in episodes])
    np.testing.assert_allclose(rewards, buffer["rewards"][: medium.step, 0])
    assert any(e.terminations[-1] for e in episodes)  # the pendulum falls: true terminals are kept

    combined = datasets["medium-expert"]
    assert combined.total_steps == datasets["medium"].total_steps + datasets["expert"].total_steps
    assert combined.total_episodes == datasets["medium"].total_episodes + datasets["expert"].total_episodes

    with pytest.raises(FileExistsError, match="overwrite=True"):
        make_locomotion_dataset(env, "random", budget=budget, workdir=workdir, show_progress=False)
    again = make_locomotion_dataset(
        env, "random", budget=tiny_budget(dataset_steps=60), workdir=workdir, overwrite=True, show_progress=False
    )
    assert again.total_steps == 60
    with pytest.raises(ValueError, match="level"):
        make_locomotion_dataset(env, "mixed", budget=budget, workdir=workdir)  # type: ignore[arg-type]


def test_make_locomotion_dataset_uses_d4rl_reference_scores_for_hopper(tmp_path, minari_home):
    dataset = make_locomotion_dataset(
        "hopper", "random", budget=tiny_budget(dataset_steps=50), workdir=tmp_path / "sac", show_progress=False
    )
    assert dataset.spec.dataset_id == "tt-agents/hopper/random-v0" and dataset.total_steps == 50
    metadata = dataset.storage.metadata
    assert (metadata["ref_min_score"], metadata["ref_max_score"]) == D4RL_REFERENCE_SCORES["Hopper-v5"]
    assert not (tmp_path / "sac").exists()  # no SAC needed for random with known references


def test_shipped_policies_record_the_same_medium_episodes_for_a_seed_without_training(
    tmp_path, one_thread, minari_home
):
    from dataclasses import replace

    from tt_agents.data_making.data_policies import shipped_policies, shipped_policy

    shipped = {(p.env_id, p.level) for p in shipped_policies()}
    envs = ("Hopper-v5", "Walker2d-v5", "HalfCheetah-v5")
    assert shipped >= {(env, level) for env in envs for level in ("medium", "expert")}
    assert shipped_policy("Hopper-v5", "medium-replay") is None and shipped_policy("Ant-v5", "medium") is None
    budget = replace(DatasetBudget.cpu(), dataset_steps=400)
    assert budget.shipped_policies and not DatasetBudget.paper().shipped_policies
    made = [
        make_locomotion_dataset(
            "walker2d",
            "medium",
            budget=budget,
            workdir=tmp_path / "sac",
            dataset_id=f"test/walker/m{i}-v0",
            show_progress=False,
        )
        for i in range(2)
    ]
    assert not (tmp_path / "sac").exists()  # nothing trained
    assert "shipped with tt_agents" in made[0].storage.metadata["description"]
    first, second = (list(d.iterate_episodes()) for d in made)
    assert len(first) == len(second) and sum(len(e.actions) for e in first) == 400
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.observations, b.observations)
        np.testing.assert_array_equal(a.actions, b.actions)
    assert np.abs(np.concatenate([e.actions for e in first])).max() <= 1.0
    reseeded = make_locomotion_dataset(
        "walker2d",
        "medium",
        budget=replace(budget, seed=1),
        workdir=tmp_path / "sac",
        dataset_id="test/walker/s1-v0",
        show_progress=False,
    )
    assert not np.array_equal(next(reseeded.iterate_episodes()).actions[:5], first[0].actions[:5])


@pytest.mark.parametrize("shipped", _shipped_policies(), ids=lambda p: f"{p.env_id}-{p.level}")
def test_every_shipped_policy_loads_without_unpickling_and_acts_in_its_environment(shipped) -> None:
    env = gymnasium.make(shipped.env_id)
    policy = shipped.load()
    observation, _ = env.reset(seed=0)
    for _ in range(20):
        action, _ = policy.predict(observation, deterministic=False)
        assert env.action_space.contains(action.astype(env.action_space.dtype))
        observation, *_ = env.step(action)
    assert shipped.sac_steps > 0 and "shipped with tt_agents" in shipped.describe()
    env.close()


def test_medium_is_the_evaluation_closest_to_the_target_up_to_the_first_past_it(monkeypatch, tmp_path):
    import tt_agents.data_making.locomotion as locomotion

    def fake_train(returns):
        evaluations = [
            SACEvaluation(step=10_000 * (i + 1), mean_return=r, std_return=0.0, policy=f"p{i}")
            for i, r in enumerate(returns)
        ]
        monkeypatch.setattr(locomotion, "_train", lambda *args, **kwargs: evaluations)

    budget = DatasetBudget(sac_steps_medium=100_000, sac_steps_expert=100_000)
    fake_train([300.0, 900.0, 1900.0, 1000.0])  # a jump past the target: 900 is closer than 1900
    assert locomotion._medium_evaluation("Hopper-v5", tmp_path, budget, 1065.0, False).step == 20_000
    fake_train([300.0, 1050.0, 1100.0])
    assert locomotion._medium_evaluation("Hopper-v5", tmp_path, budget, 1065.0, False).step == 20_000
    fake_train([300.0, 500.0])
    with pytest.warns(UserWarning, match="no SAC evaluation"):
        assert locomotion._medium_evaluation("Hopper-v5", tmp_path, budget, 1065.0, False).step == 20_000


@pytest.mark.parametrize(
    ("sac_kwargs", "expected"),
    [(None, {"learning_starts": 10_000}), ({}, {}), ({"learning_starts": 50}, {"learning_starts": 50})],
)
def test_a_sac_run_follows_the_recipe_of_its_environments_shipped_policies_unless_told(
    monkeypatch, tmp_path, minari_home, sac_kwargs, expected
):
    import tt_agents.data_making.locomotion as locomotion
    from tt_agents.data_making.data_policies import shipped_sac_kwargs

    assert shipped_sac_kwargs("HalfCheetah-v5") == {"learning_starts": 10_000}
    assert shipped_sac_kwargs("Hopper-v5") == {} and shipped_sac_kwargs("Ant-v5") == {}
    assert DatasetBudget.cpu().sac_kwargs is None and DatasetBudget.paper().sac_kwargs is None

    class Trained(Exception):
        pass

    def fake_train_sac(*args, **kwargs):
        raise Trained(kwargs["sac_kwargs"])

    monkeypatch.setattr(locomotion, "train_sac", fake_train_sac)
    with pytest.raises(Trained) as trained:  # medium-replay is the run's own buffer: no shipped policy stands in
        locomotion.make_locomotion_dataset(
            "halfcheetah", "medium-replay", budget=tiny_budget(sac_kwargs=sac_kwargs), workdir=tmp_path
        )
    assert trained.value.args[0] == expected


def test_every_locomotion_level_has_a_maker():
    from tt_agents.data_making.locomotion import LEVEL_MAKERS

    assert tuple(LEVEL_MAKERS) == LOCOMOTION_LEVELS
