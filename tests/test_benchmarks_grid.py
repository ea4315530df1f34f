"""The benchmarks' cells as Ray tasks (benchmarks/grid.py): a local Ray run gives the rows the sequential loop gives,
a method that plans with another cell's agent waits for it, and a failing cell is retried, then reported."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

ray = pytest.importorskip("ray")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the scripts import their neighbours

import common  # noqa: E402
import d4rl_locomotion  # noqa: E402
import grid  # noqa: E402

from tt_agents.data_making import inverted_pendulum_policy, record_dataset  # noqa: E402

DATASET = "smoke/invertedpendulum/medium-v0"
TINY = ["--datasets", DATASET, "--seeds", "1", "--episodes", "2", "--n-envs", "2", "--max-episode-steps", "15"]
TINY += ["--tt-steps", "12", "--baseline-steps", "12", "--device", "cpu"]


@pytest.fixture
def smoke_dataset(tmp_path, monkeypatch) -> str:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    record_dataset(
        "InvertedPendulum-v5",
        inverted_pendulum_policy(noise=0.3, seed=0),
        DATASET,
        n_episodes=4,
        max_episode_steps=40,
        ref_min_score=0.0,
        ref_max_score=40.0,
        description="smoke",
    )
    return DATASET


def scores(csv_path: Path) -> list[tuple[str, str, str, str]]:
    """(method, score, returns, lengths) of every row of a benchmark's csv, in its order."""
    with csv_path.open() as f:
        return [(r["method"], r["score"], r["episode_returns"], r["episode_lengths"]) for r in csv.DictReader(f)]


def results(workdir: Path) -> dict[tuple[str, str], dict]:
    """(method, seed folder) -> the cell's result.json."""
    return {(p.parts[-3], p.parts[-2]): json.loads(p.read_text()) for p in sorted(workdir.rglob("result.json"))}


@pytest.mark.slow
def test_a_local_ray_run_gives_the_rows_of_the_sequential_loop(smoke_dataset, tmp_path, one_torch_thread) -> None:
    methods = ["--methods", "tt-quantile", "tt-imitation", "bc"]
    sequential, on_ray = tmp_path / "sequential", tmp_path / "ray"
    assert d4rl_locomotion.main([*TINY, *methods, "--workdir", str(sequential), "--out", str(sequential / "out")]) == 0
    assert d4rl_locomotion.main([*TINY, *methods, "--workdir", str(on_ray), "--out", str(on_ray / "out"), "--ray"]) == 0
    expected, got = results(sequential), results(on_ray)
    assert sorted(got) == sorted(expected) == [(m, "seed0") for m in ("bc", "tt-imitation", "tt-quantile")]
    for key in expected:
        assert got[key]["lengths"] == expected[key]["lengths"], key
        np.testing.assert_allclose(got[key]["returns"], expected[key]["returns"], rtol=1e-6, err_msg=str(key))
    assert got[("tt-imitation", "seed0")]["train"]["reuses"] == "tt-quantile"  # planned with the waited-for agent
    report = (on_ray / "out" / "locomotion.md").read_text()
    assert "run as Ray tasks of 1 core(s) each" in report
    table = {name: scores(folder / "out" / "locomotion.csv") for name, folder in (("seq", sequential), ("ray", on_ray))}
    assert table["ray"] == table["seq"] and len(table["seq"]) == 3


def flaky_cell(marker: str, name: str) -> dict:
    """Fails on its first run (as a killed or crashed cell would), then gives its row."""
    path = Path(marker)
    if not path.exists():
        path.write_text("tried")
        raise RuntimeError("the first try fails")
    return {"name": name, "status": "done", "score": 1.0}


def broken_cell(marker: str, name: str) -> dict:
    """Fails with an error of its input, which a retry would only repeat."""
    with Path(marker).open("a") as tries:
        tries.write("tried\n")
    raise ValueError(f"{name} is broken")


@pytest.mark.slow
def test_a_crashed_cell_is_retried_and_one_with_bad_input_is_reported_at_once(tmp_path) -> None:
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the tasks are defined in this test module
    entry = common.DatasetEntry(requested="smoke/x/medium-v0", key="x-medium")
    cells = [common.Cell(entry, method, 0, tmp_path) for method in ("flaky", "broken")]
    tasks = {"flaky": flaky_cell, "broken": broken_cell}

    def task(marker: str, name: str) -> dict:
        return tasks[name](marker, name)

    seen: list[list[dict]] = []
    rows, failures = grid.run_cells_on_ray(
        cells,
        task,
        lambda cell: (str(tmp_path / f"{cell.method}.tried"), cell.method),
        lambda row: f"score {row['score']}",
        lambda rows: seen.append(rows),
        Console(file=sys.stderr),
        grid.RayOptions(retries=1),
    )
    assert failures == 1
    assert rows[0] == {"name": "flaky", "status": "done", "score": 1.0}
    assert rows[1]["status"] == "failed: ValueError" and rows[1]["method"] == "broken"
    assert (tmp_path / "broken.tried").read_text() == "tried\n"  # not retried
    assert len(seen) == 2 and len(seen[-1]) == 2


def test_without_ray_options_the_grid_is_not_asked_for() -> None:
    args = d4rl_locomotion.parse_args(["--datasets", DATASET])
    assert not args.ray and args.retries == 2 and args.cpus_per_cell == 1.0
    assert d4rl_locomotion.parse_args(["--datasets", DATASET, "--ray-address", "auto"]).ray
    with pytest.raises(SystemExit):
        d4rl_locomotion.parse_args(["--datasets", DATASET, "--retries", "-1"])


def test_tasks_import_the_benchmarks_and_find_the_data(monkeypatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", "/data/minari")
    env = grid.task_environment()
    paths = env["PYTHONPATH"].split(":")
    assert paths[0] == str(Path(grid.__file__).resolve().parent) and paths[1] == str(Path(paths[0]).parent)
    assert env["MINARI_DATASETS_PATH"] == "/data/minari"
