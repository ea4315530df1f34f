"""Recording speed: a locomotion level recorded by one process or by several (``DatasetBudget.recording_workers``).

What it measures
    Seconds to record ``--steps`` transitions of a level from its shipped SAC data policy (no training) into a
    throwaway Minari root, for each worker setting in turn: ``none`` (the one-process recorder, one random stream
    through the whole recording: the cpu preset's default) and each number given (episodes with seeds of their
    own, recorded by that many processes). It also checks that every numbered setting wrote the same episodes.

How to run
    python benchmarks/recording_speed.py                          # hopper medium, 100k steps: none, 1, 2 workers
    python benchmarks/recording_speed.py --env walker2d --steps 20000 --workers none 1 2 4
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace

import minari
import numpy as np
from rich.console import Console
from rich.table import Table
from timing import load_average

from tt_agents.data_making import DatasetBudget, make_locomotion_dataset


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="hopper", help="an environment with a shipped policy for --level")
    p.add_argument("--level", default="medium")
    p.add_argument("--steps", type=int, default=100_000, help="transitions recorded per setting")
    p.add_argument("--workers", nargs="+", default=["none", "1", "2"], help='"none" and/or process counts')
    args = p.parse_args(argv)
    if any(w != "none" and (not w.isdigit() or int(w) < 1) for w in args.workers):
        p.error('--workers takes "none" and positive integers')
    return args


def episodes_of(dataset: minari.MinariDataset) -> list[tuple[np.ndarray, ...]]:
    return [(e.observations, e.actions, e.rewards, e.terminations, e.truncations) for e in dataset.iterate_episodes()]


def same_episodes(first: list[tuple[np.ndarray, ...]], second: list[tuple[np.ndarray, ...]]) -> bool:
    return len(first) == len(second) and all(
        all(np.array_equal(a, b) for a, b in zip(x, y, strict=True)) for x, y in zip(first, second, strict=True)
    )


def time_settings(args: argparse.Namespace, table: Table, console: Console) -> None:
    """Record the level once per worker setting (after an untimed warm-up), adding a row to ``table`` for each."""
    reference = None
    warm_up = replace(DatasetBudget.cpu(), dataset_steps=100)  # imports and the policy's first load
    make_locomotion_dataset(args.env, args.level, budget=warm_up, dataset_id="speed/warm-up-v0", show_progress=False)
    for setting in args.workers:
        workers = None if setting == "none" else int(setting)
        budget = replace(DatasetBudget.cpu(), dataset_steps=args.steps, recording_workers=workers)
        start = time.perf_counter()
        dataset = make_locomotion_dataset(
            args.env, args.level, budget=budget, dataset_id=f"speed/{args.env}/w{setting}-v0", show_progress=False
        )
        seconds = time.perf_counter() - start
        same = "—"
        if workers is not None:
            episodes = episodes_of(dataset)
            reference = episodes if reference is None else reference
            same = str(same_episodes(reference, episodes))
        steps = dataset.total_steps
        table.add_row(setting, f"{seconds:.1f}", f"{steps / seconds:,.0f}", str(dataset.total_episodes), same)
        console.print(f"workers {setting}: {seconds:.1f} s")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    console = Console()
    table = Table(title=f"recording {args.env} {args.level}, {args.steps:,} steps (load {load_average()})")
    for column in ("workers", "seconds", "steps/s", "episodes", "same episodes as the first numbered setting"):
        table.add_column(column)
    previous_root = os.environ.get("MINARI_DATASETS_PATH")
    try:
        with tempfile.TemporaryDirectory() as root:
            os.environ["MINARI_DATASETS_PATH"] = root
            time_settings(args, table, console)
    finally:
        if previous_root is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous_root
    console.print(table)


if __name__ == "__main__":
    main()
