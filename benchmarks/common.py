"""Pieces shared by the benchmark scripts: the loop over resumable cells and their JSON files, mean ± standard
error, and the machine/command lines written into every results file."""

from __future__ import annotations

import io
import json
import math
import os
import platform
import shlex
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class SettingsMismatch(RuntimeError):
    """A cell folder holds an agent trained with other settings."""


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1))
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two JSON-like values differ (``config.train.n_steps``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            path
            for key in sorted(set(old) | set(new))
            for path in changed_keys(old.get(key), new.get(key), f"{prefix}{key}.")
        ]
    return [prefix.rstrip(".")] if old != new else []


def mean_se(values: list[float]) -> tuple[float, float | None]:
    """Mean and standard error (sample std / sqrt(n)); no s.e. for a single value."""
    array = np.asarray(values, dtype=np.float64)
    se = float(array.std(ddof=1) / math.sqrt(len(array))) if len(array) > 1 else None
    return float(array.mean()), se


def fmt(value: float | None, se: float | None = None, digits: int = 1) -> str:
    if value is None:
        return "—"
    text = f"{value:.{digits}f}"
    return text + (f" ± {se:.{digits}f}" if se is not None else "")


def fmt_paper(value: float, se: float | None) -> str:
    """A published number as printed (its own precision)."""
    return f"{value:.1f}" + (f" ± {se:g}" if se is not None else "")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads"
    if torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name(0)}"
    return text + f", Python {platform.python_version()}"


def command_line() -> str:
    return "python " + shlex.join(sys.argv)


def nested_live_supported() -> bool:
    """Whether rich can show the trainers' progress bars inside the cell progress (rich >= 14)."""
    from rich.errors import LiveError
    from rich.live import Live

    console = Console(file=io.StringIO(), force_terminal=True)
    try:
        with Live(console=console), Live(console=console):
            return True
    except LiveError:
        return False


def run_cells(
    cells: list[Any],
    run: Callable[[Any], dict[str, Any]],
    describe: Callable[[dict[str, Any]], str],
    after_each: Callable[[list[dict[str, Any]]], None],
    console: Console,
) -> tuple[list[dict[str, Any]], int]:
    """Run every cell (each has ``name``, ``entry.key``, ``entry.dataset_id``, ``method`` and ``seed``) under one
    progress bar; a failing cell is reported and the others still run. ``after_each`` sees the rows so far.

    Returns the rows (a failed cell's row has only its name fields and ``status``) and the number of failures.
    """
    rows: list[dict[str, Any]] = []
    failures = 0
    progress = Progress(
        TextColumn("[bold]cells"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        disable=not nested_live_supported(),
    )
    with progress:
        task = progress.add_task("", total=len(cells))
        for cell in cells:
            progress.update(task, description=cell.name)
            if progress.disable:
                console.rule(cell.name)
            try:
                row = run(cell)
                console.print(f"{cell.name}: {describe(row)} ({row['status']})")
            except Exception as exc:  # one broken cell is reported and the others still run
                failures += 1
                console.print(f"[red]{cell.name} failed:[/] {type(exc).__name__}: {exc}")
                if not isinstance(exc, SettingsMismatch):
                    console.print(traceback.format_exc(), markup=False, highlight=False)
                row = {
                    "dataset": cell.entry.key,
                    "dataset_id": cell.entry.dataset_id,
                    "method": cell.method,
                    "seed": cell.seed,
                    "status": f"failed: {type(exc).__name__}",
                }
            rows.append(row)
            progress.advance(task)
            after_each(rows)
    return rows, failures
