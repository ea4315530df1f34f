"""Tests of the tt-agents command line."""

from __future__ import annotations

import json

import minari
import pytest
import torch

from tt_agents.cli import _train_config, build_parser, main

TINY_FLAGS = [
    "--sac-steps",
    "200",
    "--dataset-steps",
    "60",
    "--eval-every",
    "100",
    "--eval-episodes",
    "1",
    "--checkpoint-every",
    "100",
    "--no-progress",
    "--sac-kwargs",
    json.dumps({"learning_starts": 50, "batch_size": 32, "policy_kwargs": {"net_arch": [16, 16]}}),
]


@pytest.fixture(autouse=True)
def offline_minari(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_make_dataset_command(tmp_path, capsys):
    argv = ["make-dataset", "InvertedPendulum-v5", "medium-replay", "--workdir", str(tmp_path / "sac"), *TINY_FLAGS]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "tt-agents/invertedpendulum/medium-replay-v0" in out
    assert "episodes / steps:" in out and "return:" in out and "normalized score:" in out
    dataset = minari.load_dataset("tt-agents/invertedpendulum/medium-replay-v0")
    assert dataset.storage.metadata["ref_max_score"] is not None and dataset.total_steps <= 200

    assert main(argv) == 2  # exists: an error message, not a traceback
    assert "already exists" in (err := capsys.readouterr().err) and "--overwrite" in err
    assert main([*argv, "--overwrite", "--dataset-id", "test/ip/replay-v1"]) == 0
    assert "test/ip/replay-v1" in capsys.readouterr().out


def test_make_dataset_arguments():
    args = build_parser().parse_args(["make-dataset", "hopper", "expert", "--paper", "--sac-steps", "500000"])
    from tt_agents.cli import _budget_from_args

    budget = _budget_from_args(args)
    assert budget.sac_steps_expert == 500_000 and budget.sac_steps_medium == 500_000
    assert budget.dataset_steps == 1_000_000  # the paper preset
    cpu = _budget_from_args(build_parser().parse_args(["make-dataset", "hopper", "medium"]))
    assert cpu.sac_steps_expert == 200_000 and cpu.dataset_steps == 100_000 and cpu.shipped_policies
    assert not budget.shipped_policies  # the paper preset trains D4RL's SAC
    assert cpu.recording_workers is None and budget.recording_workers >= 1  # the paper preset uses every core
    workers = _budget_from_args(build_parser().parse_args(["make-dataset", "hopper", "medium", "--workers", "3"]))
    assert workers.recording_workers == 3 and workers.shipped_policies  # recording, not training
    for flags in (["--train-policy"], ["--medium-sac-steps", "5000"], ["--eval-every", "1000"]):
        args = build_parser().parse_args(["make-dataset", "hopper", "medium", *flags])
        assert not _budget_from_args(args).shipped_policies  # SAC settings mean training
    with pytest.raises(SystemExit):
        build_parser().parse_args(["make-dataset", "hopper", "mixed"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["make-dataset", "hopper", "medium", "--cpu", "--paper"])
    assert main(["make-dataset", "NoSuchEnv-v0", "random", "--no-progress"]) == 2


def test_train_then_evaluate_commands(tmp_path, capsys):
    from tt_agents.data_making import inverted_pendulum_policy, record_dataset

    record_dataset(
        "InvertedPendulum-v5",
        inverted_pendulum_policy(0.5),
        "test/ip/cli-v0",
        n_episodes=3,
        max_episode_steps=40,
        show_progress=False,
    )
    out = tmp_path / "agent"
    assert (
        main(
            [
                "train",
                "test/ip/cli-v0",
                "--env",
                "InvertedPendulum-v5",
                "--out",
                str(out),
                "--steps",
                "3",
                "--set",
                "tokenizer.n_bins=30",
                "--set",
                "data.termination_penalty=null",
                "--set",
                "train.seed=5",
                "--no-progress",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert (out / "model.safetensors").is_file() and (out / "training" / "trainer_state.safetensors").is_file()
    saved = json.loads((out / "config.json").read_text())["config"]
    assert saved["tokenizer"]["n_bins"] == 30 and saved["data"]["termination_penalty"] is None
    assert saved["train"]["seed"] == 5, "a seed set in the config is kept when --seed is not given"
    again = build_parser().parse_args(["train", "x-v0", "--env", "E", "--out", "o", "--config", f"{out}/config.json"])
    assert json.loads(json.dumps(_train_config(again).to_dict())) == saved, "a saved config.json is a --config"
    assert (out / "logs" / "metrics.csv").is_file() and (out / "logs" / "curves.png").is_file()
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                str(out),
                "--env",
                "InvertedPendulum-v5",
                "--episodes",
                "2",
                "--beam-width",
                "2",
                "--horizon",
                "1",
                "--max-episode-steps",
                "7",
                "--json",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    result = json.loads(printed[printed.index("{") :])
    assert len(result["returns"]) == 2 and result["info"]["mode"] == "reward"
    assert all(n <= 7 for n in result["lengths"])

    analyze = [
        "analyze",
        str(out),
        "--dataset",
        "test/ip/cli-v0",
        "--out",
        str(tmp_path / "analysis"),
        "--device",
        "cpu",
    ]
    assert main([*analyze, "--horizon", "5", "--samples", "8", "--no-render"]) == 0
    assert {p.name for p in (tmp_path / "analysis").iterdir()} == {"attention.png", "likelihood.png"}
    capsys.readouterr()
    assert main([*analyze, "--horizon", "5", "--samples", "8"]) == 2  # the pendulum's observation is not qpos[1:]
    assert "only MuJoCo locomotion environments" in capsys.readouterr().err

    evaluate = ["evaluate", str(out), "--episodes", "1", "--device", "cpu"]
    for argv, message in [
        ([*evaluate, "--env", "InvertedDoublePendulum-v5"], "is not the agent's"),  # another environment
        ([*evaluate, "--env", "NoSuchEnv-v0"], "NoSuchEnv"),
        (["evaluate", str(tmp_path / "nothing"), "--env", "InvertedPendulum-v5"], "no checkpoint directory"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("tt-agents evaluate: error:") and message in err and "Traceback" not in err

    record_dataset(  # other data into the same output folder: another run, refused rather than resumed
        "InvertedPendulum-v5",
        inverted_pendulum_policy(0.1),
        "test/ip/cli-other-v0",
        n_episodes=3,
        max_episode_steps=40,
        show_progress=False,
    )
    train_other = ["train", "test/ip/cli-other-v0", "--out", str(out)]  # the spaces are the dataset's
    assert main([*train_other, "--steps", "3", "--seed", "5", "--no-progress", "--device", "cpu"]) == 2
    assert "belongs to another training run" in capsys.readouterr().err


def test_train_reports_a_missing_dataset_without_a_traceback(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "nobody/nothing/none-v0",
                "--env",
                "InvertedPendulum-v5",
                "--out",
                str(tmp_path / "x"),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "not available locally" in capsys.readouterr().err
    assert main(["train", "nobody/nothing/none-v0", "--out", str(tmp_path / "x"), "--no-progress"]) == 2  # no --env
    assert "not available locally" in capsys.readouterr().err


def test_train_settings_from_a_file_and_set_are_checked_before_anything_runs(tmp_path, capsys):
    from tt_agents.config import cpu_preset

    base = ["train", "some/data-v0", "--env", "Pendulum-v1", "--out", str(tmp_path / "a")]
    config = _train_config(build_parser().parse_args([*base, "--set", "planner.mode=imitation"]))
    assert config.planner.mode == "imitation" and config.model == cpu_preset().model
    saved = tmp_path / "config.json"
    saved.write_text(json.dumps({"model": {"n_layer": 3}}))
    config = _train_config(build_parser().parse_args([*base, "--config", str(saved), "--set", "train.n_steps=7"]))
    assert (config.model.n_layer, config.train.n_steps, config.tokenizer.n_bins) == (3, 7, 100)
    for setting, error in [
        ("x.y=1", "no config section 'x'"),
        ("model.depth=3", "model has no field 'depth'; its fields are"),
        ("tokenizer.n_bins=many", "TokenizerConfig.n_bins must be"),
    ]:
        assert main([*base, "--set", setting, "--no-progress"]) == 2
        assert error in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args([*base, "--set", "n_bins"])
    saved.write_text("[1, 2]")
    assert main([*base, "--config", str(saved)]) == 2
    assert "expected a JSON object" in capsys.readouterr().err


def test_demo_records_trains_evaluates_and_saves(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--steps", "3", "--episodes", "1", "--episode-steps", "5", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    printed = " ".join(capsys.readouterr().out.split())  # rich wraps lines at the terminal's width
    assert "tt-agents/invertedpendulum/expert-v0" in printed and "TT (imitation planning): return" in printed
    assert "over 1 episodes" in printed and "the expert scores 5 in 5-step episodes" in printed
    from tt_agents import TTAgent

    agent = TTAgent.from_pretrained(out, device="cpu")
    assert agent.config.planner.mode == "imitation" and agent.dataset_info["dataset_id"].endswith("expert-v0")
