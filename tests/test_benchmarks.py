"""The benchmarks' shared machinery (benchmarks/common.py): cells, settings checks, cached results, summaries over
seeds, and evaluation seeds that give every seed its own starting states. Nothing here trains."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
from helpers import ENV_ID

from tt_agents import AgentConfig, PlannerConfig
from tt_agents.evaluation import make_vec_env

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, which holds benchmarks/

from benchmarks import common  # noqa: E402


def _entry(key: str = "hopper-medium", dataset_id: str = "tt-agents/hopper/medium-v0", **kwargs) -> common.DatasetEntry:
    return common.DatasetEntry(requested=dataset_id, key=key, dataset_id=dataset_id, **kwargs)


def test_cells_are_named_and_kept_by_dataset_method_and_seed(tmp_path) -> None:
    cell = common.Cell(_entry(), "bc", 1, tmp_path)
    assert cell.name == "hopper-medium / bc / seed 1"
    assert cell.dir == tmp_path / "tt-agents__hopper__medium-v0" / "bc" / "seed1"
    assert cell.dir_of("iql") == tmp_path / "tt-agents__hopper__medium-v0" / "iql" / "seed1"
    assert cell.row == {
        "dataset": "hopper-medium",
        "dataset_id": "tt-agents/hopper/medium-v0",
        "method": "bc",
        "seed": 1,
    }


def test_cells_are_seed_major_and_skip_unavailable_datasets(tmp_path) -> None:
    hopper, missing = _entry(), _entry("walker2d-medium", "mujoco/walker2d/medium-v0", unavailable="not downloaded")
    maze = _entry("pointmaze-medium", "tt-agents/pointmaze/medium-v0")
    cells = common.make_cells([hopper, missing, maze], ["tt", "bc"], 2, tmp_path)
    assert [(c.seed, c.entry.key, c.method) for c in cells] == [
        (seed, key, method)
        for seed in (0, 1)
        for key in ("hopper-medium", "pointmaze-medium")
        for method in ("tt", "bc")
    ]


def test_aggregate_gives_mean_and_standard_error_over_seeds() -> None:
    rows = [
        {"dataset": "d", "method": "tt", "seed": seed, "score": score} for seed, score in ((2, 3.0), (0, 1.0), (1, 2.0))
    ]
    rows += [
        {"dataset": "d", "method": "tt", "seed": 3, "status": "failed: RuntimeError"},  # no score: left out
        {"dataset": "d", "method": "bc", "seed": 0, "score": 5.0},
    ]
    summaries = common.aggregate(rows, "score")
    tt = summaries[("d", "tt")]
    assert tt.values == [1.0, 2.0, 3.0] and [r["seed"] for r in tt.rows] == [0, 1, 2] and tt.n == 3
    assert tt.mean == pytest.approx(2.0)
    assert tt.se == pytest.approx(1.0 / math.sqrt(3.0))  # sample std 1 over sqrt(3 seeds)
    assert summaries[("d", "bc")].mean == 5.0 and summaries[("d", "bc")].se is None  # one seed: no s.e.
    assert set(summaries) == {("d", "tt"), ("d", "bc")}


def test_settings_mismatch_names_the_changed_keys_and_keeps_the_saved_settings(tmp_path) -> None:
    settings = {"method": "tt", "config": {"train": {"n_steps": 4000, "betas": (0.9, 0.95)}}}
    common.check_settings(tmp_path, settings)
    common.check_settings(tmp_path, settings)  # the same settings again (tuples read back as lists) pass
    changed = {"method": "tt", "config": {"train": {"n_steps": 20, "betas": (0.9, 0.95)}}}
    with pytest.raises(common.SettingsMismatch, match=r"changed: config\.train\.n_steps\)"):
        common.check_settings(tmp_path, changed)
    assert common.read_json(tmp_path / "settings.json") == common.json_safe(settings)


def test_settings_saved_before_a_config_field_existed_match_its_default(tmp_path) -> None:
    settings = {"method": "tt", "config": AgentConfig().to_dict()}
    older = {"method": "tt", "config": AgentConfig().to_dict()}
    del older["config"]["train"]["compile"]
    common.write_json_atomic(tmp_path / "settings.json", older)
    common.check_settings(tmp_path, settings)
    reused = {"method": "tt-imitation", "reuses": older}  # a cell that reuses another's agent nests its settings
    common.write_json_atomic(tmp_path / "reused" / "settings.json", reused)
    common.check_settings(tmp_path / "reused", {"method": "tt-imitation", "reuses": settings})
    changed = {"method": "tt", "config": AgentConfig().to_dict()}
    changed["config"]["train"]["compile"] = True
    with pytest.raises(common.SettingsMismatch, match="config.train.compile"):
        common.check_settings(tmp_path, changed)


def test_run_cell_reuses_a_result_only_under_the_same_settings(tmp_path) -> None:
    cell = common.Cell(_entry(), "bc", 0, tmp_path)
    calls = []

    def train_or_load(settings):
        common.check_settings(cell.dir, settings)
        calls.append("train")
        return "agent", {"train_s": 1.0, "n_steps": settings["n_steps"]}

    def run(settings, eval_settings):
        return common.run_cell(cell, settings, eval_settings, lambda: train_or_load(settings), lambda a: {"score": 7.0})

    first = run({"n_steps": 10}, {"episodes": 2})
    assert first["status"] == "done" and first["score"] == 7.0 and first["train"]["n_steps"] == 10
    assert first["dataset"] == "hopper-medium" and first["seed"] == 0
    assert run({"n_steps": 10}, {"episodes": 2})["status"] == "cached" and calls == ["train"]
    assert run({"n_steps": 10}, {"episodes": 3})["status"] == "done" and calls == ["train"] * 2  # re-evaluated
    assert common.read_json(cell.dir / "result.json")["eval_settings"] == {"episodes": 3}
    with pytest.raises(common.SettingsMismatch):  # other training settings are refused, not mixed in
        run({"n_steps": 20}, {"episodes": 3})


def test_a_cell_run_for_the_report_only_is_read_when_cached_and_never_trained(tmp_path) -> None:
    cell = common.Cell(_entry(), "bc", 0, tmp_path)

    def never():
        raise AssertionError("a report-only run trains nothing")

    def run(train: bool, trained=never):
        return common.run_cell(cell, {"n_steps": 10}, {"episodes": 2}, trained, lambda a: {"score": 7.0}, train=train)

    assert run(False) == {**cell.row, "status": "not run"} and not (cell.dir / "result.json").exists()
    common.check_settings(cell.dir, {"n_steps": 10})
    assert run(True, lambda: ("agent", {"train_s": 1.0}))["status"] == "done"
    cached = run(False)
    assert cached["status"] == "cached" and cached["score"] == 7.0


def _locomotion_benchmark_with_a_smoke_dataset(tmp_path, monkeypatch):
    """The locomotion benchmark module, imported as its script is run, with ``smoke/ip/medium-v0`` (two short
    InvertedPendulum episodes with reference scores) recorded under ``tmp_path``."""
    from tt_agents.data_making import inverted_pendulum_policy, record_dataset

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    record_dataset(
        ENV_ID,
        inverted_pendulum_policy(0.3),
        "smoke/ip/medium-v0",
        n_episodes=2,
        max_episode_steps=20,
        ref_min_score=0.0,
        ref_max_score=20.0,
        show_progress=False,
    )
    import d4rl_locomotion

    return d4rl_locomotion


def test_the_locomotion_report_only_lists_the_cells_not_run_and_trains_nothing(tmp_path, monkeypatch) -> None:
    d4rl_locomotion = _locomotion_benchmark_with_a_smoke_dataset(tmp_path, monkeypatch)

    work, out = tmp_path / "work", tmp_path / "out"
    args = ["--datasets", "smoke/ip/medium-v0", "--methods", "tt-quantile", "bc", "--seeds", "2"]
    assert d4rl_locomotion.main([*args, "--workdir", str(work), "--out", str(out), "--report-only"]) == 0
    assert not list(work.rglob("result.json")) and not list(work.rglob("*.safetensors"))
    report = (out / "locomotion.md").read_text()
    assert report.count("| not run |") == 4


def test_a_result_evaluated_before_a_planner_field_existed_is_reused_at_its_default(tmp_path) -> None:
    cell = common.Cell(_entry(), "tt-quantile", 0, tmp_path)
    calls = []
    planner = common.planner_settings(PlannerConfig())
    older = {key: value for key, value in planner.items() if key != "value_quantile"}

    def run(planner_settings):
        def trained():
            common.check_settings(cell.dir, {"n": 1})
            calls.append("train")
            return "agent", {"train_s": 1.0}

        return common.run_cell(cell, {"n": 1}, {"planner": planner_settings}, trained, lambda a: {"score": 7.0})

    assert run(older)["status"] == "done" and calls == ["train"]
    assert run(planner)["status"] == "cached" and calls == ["train"]  # the new field at its default: same plans
    assert run({**planner, "value_quantile": 0.1})["status"] == "done" and calls == ["train"] * 2


def test_with_train_steps_shortens_the_warmup_of_short_runs() -> None:
    from tt_agents import cpu_preset

    config = common.with_train_steps(cpu_preset(), 50)
    assert (config.train.n_steps, config.train.warmup_steps) == (50, 5)
    assert common.with_train_steps(cpu_preset(), 100_000).train.warmup_steps == cpu_preset().train.warmup_steps


def _starts(seed: int, n_envs: int = 5, episodes_per_env: int = 2) -> list[tuple[float, ...]]:
    """The starting observation of every episode of ``episodes_per_env`` episodes per environment."""
    venv = make_vec_env(ENV_ID, n_envs, seed=common.evaluation_seed(seed))
    starts = []
    for _ in range(episodes_per_env):  # a reset ends every episode at once and starts the next ones
        starts += [tuple(row) for row in venv.reset()]
    venv.close()
    return starts


def test_evaluation_seeds_give_every_seed_and_episode_its_own_start() -> None:
    first, second = _starts(0), _starts(1)
    assert len(set(first) | set(second)) == 20, "seeds 0 and 1 must not share a starting state"
    assert _starts(0) == first, "all methods of a seed start from the same states"


class _StandStill:
    """An SB3-style policy without dataset information, like the baselines."""

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        return np.zeros((len(observation), 1), dtype=np.float32), None


def test_evaluate_cell_scores_any_policy_with_the_datasets_reference_scores(tmp_path) -> None:
    dataset = SimpleNamespace(storage=SimpleNamespace(metadata={"ref_min_score": 0.0, "ref_max_score": 10.0}))
    cell = common.Cell(
        _entry("pendulum", "tt-agents/pendulum-v0", dataset=dataset, env_spec=gym.spec(ENV_ID)), "bc", 0, tmp_path
    )
    result = common.evaluate_cell(cell, _StandStill(), n_episodes=2, n_envs=2, max_episode_steps=None)
    assert len(result["returns"]) == 2 and result["eval_s"] > 0
    np.testing.assert_allclose(result["normalized"], [10.0 * r for r in result["returns"]])
    cut_short = common.evaluate_cell(cell, _StandStill(), n_episodes=1, n_envs=1, max_episode_steps=2)
    assert cut_short["normalized"] is None  # reference scores are for whole episodes


def test_the_locomotion_benchmark_trains_with_the_readmes_cpu_preset() -> None:
    # A README user (cpu_preset()) trains the same model at the same speed as the benchmark's cpu preset: only the
    # step budget, the discretization (the preset's uniform bins are the tt-uniform cells'), the planning mode and
    # the embeddings (the grid's are the preset's before its ordinal embedding) are the benchmark's own.
    sys.path.insert(0, str(Path(common.__file__).parent))
    from benchmarks import d4rl_locomotion
    from tt_agents import cpu_preset

    args = d4rl_locomotion.parse_args(["--datasets", "tt-agents/walker2d/medium-v0"])
    readme = cpu_preset()
    assert d4rl_locomotion.tt_config(args, "tt-uniform", "walker2d-medium").tokenizer == readme.tokenizer
    for method in ("tt-quantile", "tt-uniform", "tt-imitation"):
        config = d4rl_locomotion.tt_config(args, method, "walker2d-medium")
        # the grid's cells were all trained before the cpu preset had the ordinal embedding, and keep it off
        assert config.model == replace(readme.model, ordinal_embedding=False)
        assert config.tokenizer.n_bins == readme.tokenizer.n_bins
        assert config.data == readme.data
        assert config.train.n_steps == readme.train.n_steps and config.train.min_epochs == readme.train.min_epochs
        assert config.train.batch_size == readme.train.batch_size
    assert d4rl_locomotion.tt_config(args, "tt-imitation", "walker2d-medium").planner.mode == "imitation"
    exact = d4rl_locomotion.parse_args(["--datasets", "tt-agents/walker2d/medium-v0", "--tt-steps", "300"])
    train = d4rl_locomotion.tt_config(exact, "tt-quantile", "walker2d-medium").train
    assert train.n_steps == 300 and train.min_epochs is None  # an explicit budget is trained exactly


def test_the_locomotion_report_states_the_budget_as_trained_and_each_cells_steps() -> None:
    # the cpu preset trains 4000 steps *and at least 5 passes*: the report must not say "4,000 steps" alone, and each
    # cell's row gives the steps it trained
    sys.path.insert(0, str(Path(common.__file__).parent))
    from benchmarks import d4rl_locomotion, reports

    args = d4rl_locomotion.parse_args(["--datasets", "tt-agents/walker2d/medium-v0"])
    lines = d4rl_locomotion.preset_lines(args, "walker2d-medium")
    assert "TT (every dataset): " in lines[0] and "4,000 steps and at least 5 passes" in lines[0]
    assert "TT steps 4,000 steps and at least 5 passes over the training windows (paper 195,313" in "".join(lines)
    exact = d4rl_locomotion.parse_args(["--datasets", "tt-agents/walker2d/medium-v0", "--tt-steps", "300"])
    assert "; 300 steps at batch 64" in d4rl_locomotion.preset_lines(exact, "walker2d-medium")[0]
    row = {"dataset": "walker2d-medium", "method": "tt-uniform", "seed": 0, "score": 17.3, "lengths": [167, 1000]}
    row |= {"train": {"train_s": 2691.0, "resumed": False, "n_steps": 7454}, "eval_s": 945.0, "ms_per_action": 97.0}
    row["status"] = "done"
    baseline = row | {"method": "bc", "train": {"train_s": 220.0}, "ms_per_action": None}  # an older record: no steps
    table = "\n".join(reports._locomotion_cells([row, baseline], Path("runs/x")))
    assert "| steps trained |" in table
    assert "| walker2d-medium | tt-uniform | 0 | 17.3 | 167 1000 | 7,454 | 2691 | 945 | 97 | " in table
    assert "| walker2d-medium | bc | 0 | 17.3 | 167 1000 | — | 220 | 945 | — | " in table


def test_only_seeds_picks_a_share_of_the_grid(tmp_path) -> None:
    cells = common.make_cells([_entry()], ["bc", "iql"], n_seeds=3, workdir=tmp_path, only_seeds=[1])
    assert [(c.method, c.seed) for c in cells] == [("bc", 1), ("iql", 1)]


def _provenance(episodes: int = 40, mean_return: float = 812.34) -> dict:
    return {
        "dataset_id": "tt-agents/hopper/medium-v0",
        "env_id": "Hopper-v5",
        "total_episodes": episodes,
        "total_steps": 10_000,
        "data_mean_return": mean_return,
        "data_score": 25.0,
        "ref_min_score": 0.0,
        "ref_max_score": 3000.0,
        "description": "a test's",
        "algorithm_name": "none",
        "author": None,
        "env_kwargs": {},
    }


def _scored_row(key: str, method: str, seed: int, score: float) -> dict:
    row = {"dataset": key, "dataset_id": f"tt-agents/{key}", "method": method, "seed": seed, "score": score}
    row["score_kind"] = "normalized"
    return row | {"returns": [1.0], "lengths": [10], "train": {"train_s": 1.0, "n_steps": 5}, "eval_s": 1.0}


def _results_file(path: Path, entries: list, rows: list) -> Path:
    """A results JSON as a run with these datasets and scored cells writes it."""
    path.write_text(json.dumps(common.results_record(entries, rows, common.MergedResults())))
    return path


def _record(datasets: dict, rows: list) -> dict:
    return {"format": 1, "datasets": datasets, "rows": rows}


def test_merged_results_fill_the_cells_of_a_dataset_measured_elsewhere_and_run_none_of_them(tmp_path) -> None:
    there = _entry(provenance=_provenance())
    rows = [_scored_row("hopper-medium", "bc", 0, 20.0), _scored_row("hopper-medium", "bc", 1, 22.0)]
    merged = common.read_merged_results([_results_file(tmp_path / "a.json", [there], rows)])
    here = _entry(unavailable="not on this machine")  # a fresh machine without the dataset
    entries, warnings = common.merge_entries([here], merged)
    assert warnings == [] and entries[0].measured_elsewhere and entries[0].unavailable is None
    assert entries[0].provenance == _provenance()
    assert common.make_cells(entries, ["bc", "iql"], 2, tmp_path) == []  # no dataset here: nothing runs
    grid = common.grid_rows(entries, ["bc", "iql"], [0, 1], [], merged)
    assert [(r["method"], r["seed"], r["status"], r.get("score")) for r in grid] == [
        ("bc", 0, "merged", 20.0),
        ("iql", 0, "not run", None),
        ("bc", 1, "merged", 22.0),
        ("iql", 1, "not run", None),
    ]
    only_seed_1 = common.grid_rows(entries, ["bc", "iql"], [0, 1], [], merged, not_run_seeds=[1])
    assert [(r["method"], r["seed"], r["status"]) for r in only_seed_1] == [
        ("bc", 0, "merged"),
        ("bc", 1, "merged"),
        ("iql", 1, "not run"),
    ]


def test_cells_run_beside_merged_ones_only_on_the_same_recording(tmp_path) -> None:
    rows = [_scored_row("hopper-medium", "bc", 0, 20.0)]
    merged = common.read_merged_results([_results_file(tmp_path / "a.json", [_entry(provenance=_provenance())], rows)])
    dataset = object()
    same = _entry(dataset=dataset, provenance=_provenance(mean_return=812.31))  # the report's precision: one decimal
    entries, warnings = common.merge_entries([same], merged)
    assert warnings == [] and not entries[0].measured_elsewhere
    assert [c.method for c in common.make_cells(entries, ["bc", "iql"], 1, tmp_path)] == ["bc", "iql"]
    ran_here = [{**_scored_row("hopper-medium", "iql", 0, 30.0), "status": "done"}]
    grid = common.grid_rows(entries, ["bc", "iql"], [0], ran_here, merged)
    assert [(r["method"], r["status"]) for r in grid] == [("bc", "merged"), ("iql", "done")]

    other = _entry(dataset=dataset, provenance=_provenance(episodes=41))  # another CPU recorded other episodes
    entries, warnings = common.merge_entries([other], merged)
    assert len(warnings) == 1 and "41 episodes, 10,000 steps, mean return 812.3) is not the merged one" in warnings[0]
    assert entries[0].measured_elsewhere and entries[0].provenance == _provenance()
    assert common.make_cells(entries, ["bc", "iql"], 1, tmp_path) == []  # no cell of two recordings mixes
    assert [r["status"] for r in common.grid_rows(entries, ["bc", "iql"], [0], [], merged)] == ["merged", "not run"]


def test_a_later_results_file_replaces_a_dataset_it_measured_on_another_recording(tmp_path) -> None:
    first = [_scored_row("hopper-medium", "bc", 0, 20.0), _scored_row("hopper-medium", "iql", 0, 25.0)]
    second = [_scored_row("hopper-medium", "iql", 0, 30.0)]
    files = [
        _results_file(tmp_path / "xeon.json", [_entry(provenance=_provenance())], first),
        _results_file(tmp_path / "epyc.json", [_entry(provenance=_provenance(episodes=41))], second),
    ]
    merged = common.read_merged_results(files)
    assert merged.datasets["hopper-medium"]["provenance"]["total_episodes"] == 41
    assert {cell: row["score"] for cell, row in merged.rows.items()} == {("hopper-medium", "iql", 0): 30.0}
    more = _results_file(tmp_path / "more.json", [_entry(provenance=_provenance())], second)
    same = common.read_merged_results([files[0], more])
    assert {cell: row["score"] for cell, row in same.rows.items()} == {
        ("hopper-medium", "bc", 0): 20.0,
        ("hopper-medium", "iql", 0): 30.0,
    }
    unmeasured = _results_file(tmp_path / "started.json", [_entry(provenance=_provenance(episodes=41))], [])
    assert json.loads(unmeasured.read_text())["datasets"] == {}  # a dataset without a scored cell is not written
    assert common.read_merged_results([files[0], unmeasured]).rows.keys() == {
        ("hopper-medium", "bc", 0),
        ("hopper-medium", "iql", 0),
    }


def test_a_results_file_keeps_the_merged_cells_a_run_does_not_show(tmp_path) -> None:
    rows = [_scored_row("hopper-medium", "bc", 0, 20.0), _scored_row("hopper-medium", "bc", 4, 21.0)]
    merged = common.read_merged_results([_results_file(tmp_path / "a.json", [_entry(provenance=_provenance())], rows)])
    walker = _entry("walker2d-medium", "tt-agents/walker2d/medium-v0", dataset=object(), provenance=_provenance(7))
    ran = {**_scored_row("walker2d-medium", "bc", 0, 17.0), "status": "done"}
    record = common.results_record([walker], [ran, {"dataset": "walker2d-medium", "status": "not run"}], merged)
    assert set(record["datasets"]) == {"hopper-medium", "walker2d-medium"}
    assert sorted((r["dataset"], r["seed"]) for r in record["rows"]) == [
        ("hopper-medium", 0),
        ("hopper-medium", 4),
        ("walker2d-medium", 0),
    ]


def test_a_merge_file_that_is_not_a_results_record_is_refused_by_name(tmp_path) -> None:
    def refused(name: str, content: bytes | dict, message: str) -> None:
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
        with pytest.raises(ValueError, match=message):
            common.read_merged_results([path])

    refused("results.pkl", b"\x80\x04\x95", "results.pkl: not a readable results JSON")
    refused("other.json", {"rows": []}, "other.json: not a results file of format 1")
    refused("lists.json", _record([], []), "lists.json: 'datasets' must be an object and 'rows' a list")
    partial = {"hopper-medium": {"provenance": {"dataset_id": "x"}}}
    refused("partial.json", _record(partial, []), "partial.json: hopper-medium.s provenance lacks algorithm_name, ")
    datasets = {"hopper-medium": {"dataset_id": "x", "provenance": _provenance()}}
    no_method = {k: v for k, v in _scored_row("hopper-medium", "bc", 0, 1.0).items() if k != "method"}
    refused("row.json", _record(datasets, [no_method]), r"row.json: row 0 \(hopper-medium\): 'method' is missing")
    text_seed = _scored_row("hopper-medium", "bc", "1", 1.0)
    refused("seed.json", _record(datasets, [text_seed]), "'seed' is missing or not an integer")
    orphan = _scored_row("walker2d-medium", "bc", 0, 1.0)
    refused("orphan.json", _record(datasets, [orphan]), "dataset 'walker2d-medium' has no provenance in the file")


def test_the_locomotion_report_merges_another_machines_results_file(tmp_path, monkeypatch) -> None:
    d4rl_locomotion = _locomotion_benchmark_with_a_smoke_dataset(tmp_path, monkeypatch)

    local = d4rl_locomotion.resolve_dataset("smoke/ip/medium-v0")
    assert set(local.provenance) == common.PROVENANCE_KEYS
    elsewhere = _entry("hopper-medium", "tt-agents/hopper/medium-v0", provenance=_provenance())
    rows = [_scored_row("ip-medium", m, 0, 11.0) for m in ("tt-quantile", "bc", "iql")]
    rows += [_scored_row("hopper-medium", "bc", 0, 22.0)]
    for row in rows[:3]:
        row["dataset_id"] = "smoke/ip/medium-v0"
    rows[2]["eval_settings"] = {"episodes": 99}  # evaluated otherwise than this run asks: not shown, run here
    merge = _results_file(tmp_path / "other_machine.json", [local, elsewhere], rows)
    work, out = tmp_path / "work", tmp_path / "out"
    args = ["--datasets", "smoke/ip/medium-v0", "tt-agents/hopper/medium-v0", "--seeds", "1"]
    args += ["--methods", "tt-quantile", "tt-imitation", "bc", "iql", "--baseline-steps", "20", "--episodes", "1"]
    args += ["--workdir", str(work), "--out", str(out), "--merge", str(merge)]
    assert d4rl_locomotion.main(args) == 0
    # only the iql cell ran: tt-imitation reuses a tt-quantile agent trained elsewhere, so it is not run
    assert [p.parent.parent.name for p in work.rglob("result.json")] == ["iql"]
    report = (out / "locomotion.md").read_text()
    assert report.count("| merged |") == 3 and "(measured elsewhere: not on the machine" in report
    assert "| hopper-medium | 25.0 | — | — | 22.0 | — |" in report
    assert "| ip-medium | tt-imitation | 0 | — |" in report and "| ip-medium | iql | 0 | " in report
    again = json.loads((out / "locomotion.json").read_text())  # the report's own file merges in turn
    scores = {(r["dataset"], r["method"]): r["score"] for r in again["rows"]}
    assert scores.keys() == {("ip-medium", m) for m in ("tt-quantile", "bc", "iql")} | {("hopper-medium", "bc")}
    assert scores[("ip-medium", "iql")] != 11.0 and set(again["datasets"]) == {"ip-medium", "hopper-medium"}


def test_the_candidate_ranking_puts_the_environment_in_the_observed_state() -> None:
    from benchmarks.candidate_ranking import RealReturn

    env = gym.make("Hopper-v5")
    observation, _ = env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(5):
        observation, *_ = env.step(rng.uniform(-1, 1, 3))
    action = rng.uniform(-1, 1, 3)
    expected, *_ = env.step(action)
    real_return = RealReturn("Hopper-v5", policy=None, steps=1, discount=0.99)
    real_return.set_state(observation)
    reached, *_ = real_return.env.step(action)
    np.testing.assert_allclose(reached, expected, atol=1e-6)


@pytest.mark.slow  # three cpu-preset networks and an ensemble, trained and sampled: about a minute each
@pytest.mark.parametrize("partial", [[], ["--partially-observed", "state"]])
def test_prediction_error_writes_its_table_for_every_model(tmp_path, monkeypatch, partial) -> None:
    sys.path.insert(0, str(Path(common.__file__).parent))  # the script imports its neighbours
    from benchmarks import prediction_error
    from tt_agents.data_making import inverted_pendulum_policy, record_dataset

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    record_dataset(
        "InvertedPendulum-v5",
        inverted_pendulum_policy(noise=0.3),
        "test/ip/tiny-v0",
        n_episodes=6,
        max_episode_steps=40,
    )
    out = tmp_path / "out"
    tiny = ["--tt-steps", "4", "--ensemble-steps", "4", "--horizon", "6", "--samples", "4", "--starts", "2"]
    prediction_error.main(
        ["--dataset", "test/ip/tiny-v0", "--holdout-every", "3", "--workdir", str(tmp_path / "w"), "--out", str(out)]
        + ["--device", "cpu", *tiny, *partial]
    )
    stem = "prediction_error_partial_state" if partial else "prediction_error"
    assert {p.name for p in out.iterdir()} == {f"{stem}.md", f"{stem}.csv", f"{stem}.png"}
    table = (out / f"{stem}.md").read_text()
    for model in ("tt-quantile", "tt-markov", "ensemble", "tt-uniform (own bins)", "oracle (quantile bins)"):
        assert f"| {model} |" in table
    assert ("Partially observed" in table) == bool(partial)
    assert (tmp_path / "w" / "partial_state" / "tt-markov" / "agent").is_dir() == bool(partial)


def test_the_recording_speed_benchmark_times_each_setting_and_compares_their_episodes(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))  # as run as a script
    from benchmarks import recording_speed

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    recording_speed.main(["--steps", "300", "--workers", "none", "1", "2"])
    out = capsys.readouterr().out
    assert all(f"workers {w}:" in out for w in ("none", "1", "2"))
    assert "True" in out and "False" not in out


def test_the_pendulum_benchmarks_expert_swings_up_and_balances_despite_its_noise() -> None:
    sys.path.insert(0, str(Path(common.__file__).parent))
    import pendulum_swing_up

    episodes = pendulum_swing_up.expert_episodes(4, seed=5)
    assert [len(e["actions"]) for e in episodes] == [200] * 4
    last = np.concatenate([e["observations"][-20:] for e in episodes])  # (80, 3) cos, sin, angular velocity
    assert (last[:, 0] > 0.95).all(), "upright at the end of every episode"
    assert np.abs(np.concatenate([e["actions"] for e in episodes])).max() <= 2.0
