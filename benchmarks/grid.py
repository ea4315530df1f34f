"""A benchmark's cells as Ray tasks: one cell per core (and a share of a GPU where the cluster has GPUs), on a
local Ray or an existing cluster.

Every cell is resumable (its trained agent, training checkpoints and ``result.json`` live under the work folder),
so a cell that fails in a way that may not recur (a crashed or killed worker, :data:`RETRIED_ERRORS`) is retried
by Ray (``retries`` times) and picks up where it stopped; one that still fails, or fails with an error of its
input (a ``ValueError`` would only repeat), is reported as failed and the others finish. Rows come back as the
cells finish and are gathered into the same tables as the sequential loop's (:func:`common.run_cells`).

On a cluster (``address``), every node must see this repository and the work folder at the same paths (a shared
filesystem) and have the package installed: a task imports the benchmark's modules from there and writes its cell
where the driver reads it. Ray is an optional dependency: ``pip install "tt-agents[ray]"``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import Cell, Row
from rich.console import Console

RETRIED_ERRORS: tuple[type[Exception], ...] = (OSError, RuntimeError, MemoryError, EOFError)
"""The exceptions after which a cell runs again: a full disk or lost file system, CUDA out of memory, a torn
checkpoint. Any other (``ValueError``, ``TypeError``, ``KeyError``...) says the cell's input is wrong and is
reported at once; a worker that dies is rerun by Ray whatever it was doing."""

FORWARDED_ENV = ("MINARI_DATASETS_PATH", "HF_HUB_OFFLINE", "MUJOCO_GL")
"""Environment variables a task gets from the driver (where the datasets are, how MuJoCo renders)."""


@dataclass(frozen=True)
class RayOptions:
    """Where and how the cells run."""

    address: str | None = None
    """An existing cluster (``ray://host:10001`` or ``auto``); None starts a local Ray on this machine."""
    cpus_per_cell: float = 1.0
    """Cores a cell holds (its torch threads): a 16-core machine runs 16 one-core cells at a time."""
    cells_per_gpu: int = 4
    """Where the cluster has GPUs, each cell holds ``1 / cells_per_gpu`` of one."""
    retries: int = 2
    """Times a failed cell is run again (it resumes from its checkpoints) before it is reported as failed."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SystemExit('--ray needs Ray: pip install "tt-agents[ray]" (or: pip install ray)') from None
    return ray


def task_environment() -> dict[str, str]:
    """What a task's process needs to import the benchmark's modules and find the data."""
    benchmarks = Path(__file__).resolve().parent
    paths = [str(benchmarks), str(benchmarks.parent), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}
    env.update({name: os.environ[name] for name in FORWARDED_ENV if name in os.environ})
    return env


def _after(task: Callable[..., Row], *args: Any) -> Row:
    """``task(*args[:-1])``, run once the row passed last (the cell it waits for) exists."""
    return task(*args[:-1])


def run_cells_on_ray(
    cells: list[Cell],
    task: Callable[..., Row],
    task_args: Callable[[Cell], tuple],
    describe: Callable[[Row], str],
    after_each: Callable[[list[Row]], None],
    console: Console,
    options: RayOptions,
    waits_for: Callable[[Cell], Cell | None] = lambda cell: None,
) -> tuple[list[Row], int]:
    """Run every cell as a Ray task ``task(*task_args(cell))`` (a function Ray can ship: defined at module level);
    a cell that ``waits_for`` names another cell of the grid starts after it (e.g. a method that plans with
    another method's trained agent). ``describe`` and ``after_each`` as in :func:`common.run_cells`.

    Returns the rows in the cells' order (a failed cell's row has only its name fields and ``status``) and the
    number of failed cells.
    """
    ray = import_ray()
    ray.init(
        address=options.address,
        runtime_env={"env_vars": task_environment()},
        include_dashboard=False,
        log_to_driver=False,
    )
    try:
        gpus = ray.cluster_resources().get("GPU", 0.0)
        resources = {"num_cpus": options.cpus_per_cell, "num_gpus": 1.0 / options.cells_per_gpu if gpus else 0.0}
        console.print(
            f"Ray: {len(cells)} cells on {ray.cluster_resources().get('CPU', 0):g} cores"
            + (f" and {gpus:g} GPUs" if gpus else "")
            + f", {options.cpus_per_cell:g} core(s)"
            + (f" and 1/{options.cells_per_gpu} GPU" if gpus else "")
            + " per cell"
        )
        remote = ray.remote(max_retries=options.retries, retry_exceptions=list(RETRIED_ERRORS), **resources)
        run, run_after = remote(task), remote(_after)
        refs: dict[int, Any] = {}
        order = {id(cell): i for i, cell in enumerate(cells)}
        for cell in sorted(cells, key=lambda c: waits_for(c) is not None):  # the waited-for cells first
            first = waits_for(cell)
            if first is not None and id(first) in refs:
                refs[id(cell)] = run_after.remote(task, *task_args(cell), refs[id(first)])
            else:
                refs[id(cell)] = run.remote(*task_args(cell))
        cell_of = {ref: cell for cell in cells for ref in [refs[id(cell)]]}
        rows: dict[int, Row] = {}
        failures = 0
        pending = list(cell_of)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            cell = cell_of[done[0]]
            try:
                row = ray.get(done[0])
                console.print(f"{cell.name}: {describe(row)} ({row['status']})")
            except Exception as exc:  # retried and still failing: reported, the other cells go on
                failures += 1
                cause = getattr(exc, "cause", None) or exc
                console.print(
                    f"[red]{cell.name} failed:[/] {type(cause).__name__} (a cell that crashed is retried up to "
                    f"{options.retries} times, one with an error of its input is not; one whose waited-for cell "
                    "failed does not run)"
                )
                console.print(str(exc), markup=False, highlight=False)  # the task's traceback
                row = {**cell.row, "status": f"failed: {type(cause).__name__}"}
            rows[order[id(cell)]] = row
            after_each([rows[i] for i in sorted(rows)])
        return [rows[i] for i in range(len(cells))], failures
    finally:
        ray.shutdown()
