"""Sparse-reward mazes, the paper's Table 2: TT (reward mode), TT+Q, IQL and BC, ours beside theirs.

For every dataset and seed, four *cells*:

``tt``
    The Trajectory Transformer planning in reward mode (predicted rewards + the model's reward-to-go).
``tt-q``
    The same trained Transformer (the ``tt`` cell's, not retrained), planning in ``q`` mode: the leaf value is
    the ``iql`` cell's Q-function, trained on the same data with the same seed and settings, which is what
    ``agent.fit(data, q_function="iql", iql_config=IQLConfig.antmaze())`` does in one call.
``iql``
    :class:`tt_agents.baselines.IQLAgent` with Kostrikov et al.'s AntMaze settings (:meth:`IQLConfig.antmaze`).
``bc``
    :class:`tt_agents.baselines.BCAgent`.

Every method acts on the environment's Dict observations as they are (observation, achieved and desired goal,
concatenated in key order), and every method of a seed is evaluated by :func:`tt_agents.evaluate` from the same
starting states. A seed's *success rate* is the share of its episodes in which the environment reported
``info["success"]``; its *normalized score* is the mean :func:`tt_agents.evaluation.normalized_score` of its
returns with the dataset's reference scores. The tables give mean ± standard error over seeds.

Presets (``--preset``)
    ``cpu``: PointMaze Medium and Large datasets made locally in the paper's AntMaze setting: one fixed goal
    per maze, rewards relabelled for it, evaluation from random starts until the goal is reached
    (``tt-agents/pointmaze/MAZE-fixed-goal-v0``, :func:`tt_agents.data_making.make_point_maze_dataset` with
    ``goal="fixed"``; made on first use), :func:`tt_agents.cpu_preset` for TT (2 layers x 64, batch 64) trained
    for :data:`CPU_TT_STEPS` steps, beam 32 / horizon 5; IQL and BC :data:`CPU_BASELINE_STEPS` steps; 2 seeds x 10
    episodes. The goal-conditioned datasets (``tt-agents/pointmaze/MAZE-v0``, a new goal every episode) can
    be given with ``--datasets``.
    ``paper``: Farama's ``D4RL/antmaze/*`` ids when available (a GPU and a download), the paper's TT model,
    1M IQL/BC steps, 5 seeds x 3 episodes.

Resumable per cell: each cell keeps its agent and ``result.json`` under ``--workdir``; a rerun skips finished
cells and resumes TT and IQL training from their last checkpoints. Results (``mazes.md``, ``mazes.csv``) are
rewritten after every cell.

    python benchmarks/mazes.py                                  # cpu preset: PointMaze Medium and Large
    python benchmarks/mazes.py --datasets tt-agents/pointmaze/umaze-fixed-goal-v0 --seeds 1 --episodes 2
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from typing import Any

import numpy as np
from common import (
    Cell,
    DatasetEntry,
    Row,
    aggregate,
    check_settings,
    dataset_provenance,
    evaluate_cell,
    evaluation_seed,
    make_cells,
    parse_benchmark_args,
    planner_settings,
    run_cell,
    run_cells,
    train_or_load_baseline,
    train_or_load_tt,
    with_train_steps,
)
from gymnasium.envs.registration import EnvSpec
from minari.storage import get_dataset_path
from paper_numbers import PAPER_BASELINE_STEPS, PAPER_TABLE2
from reports import BenchmarkReport, fmt, override_lines, write_mazes_report
from rich import get_console
from rich.table import Table

from tt_agents import AgentConfig, DatasetNotAvailableError, cpu_preset, paper_preset
from tt_agents.baselines import BCAgent, IQLAgent, IQLConfig
from tt_agents.data_loading import load_minari_dataset
from tt_agents.data_making import make_point_maze_dataset, point_maze_dataset_id
from tt_agents.envs.point_maze import GOALS, MAZES

METHODS = ("tt", "tt-q", "iql", "bc")
LABELS = {"tt": "TT (reward)", "tt-q": "TT+Q (IQL)", "iql": "IQL", "bc": "BC"}
DATASETS = {
    "cpu": tuple(point_maze_dataset_id(maze, goal="fixed") for maze in ("medium", "large")),
    "paper": (
        "D4RL/antmaze/umaze-v1",
        "D4RL/antmaze/medium-play-v1",
        "D4RL/antmaze/medium-diverse-v1",
        "D4RL/antmaze/large-play-v1",
        "D4RL/antmaze/large-diverse-v1",
    ),
}
"""The datasets of each preset."""
CPU_TT_STEPS = 4_000
CPU_BASELINE_STEPS = {"iql": 30_000, "bc": 20_000}
PAPER_TT_STEPS = 200_000


# ---------------------------------------------------------------------------------------------- datasets


def dataset_key(dataset_id: str) -> str:
    """``tt-agents/pointmaze/medium-v0`` -> ``pointmaze-medium``, ``D4RL/antmaze/large-play-v1`` ->
    ``antmaze-large-play``."""
    parts = dataset_id.split("/")
    return f"{parts[-2]}-{parts[-1].rsplit('-v', 1)[0]}" if len(parts) >= 2 else dataset_id


def load_dataset(dataset_id: str) -> DatasetEntry:
    """The dataset (made first when it is one of the local PointMaze ids and not made yet) and its evaluation
    environment (the one its metadata names, else its recording environment); unavailable ones are reported."""
    entry = DatasetEntry(requested=dataset_id, key=dataset_key(dataset_id), dataset_id=dataset_id)
    local = {point_maze_dataset_id(maze, goal): (maze, goal) for maze in MAZES for goal in GOALS}
    try:
        if dataset_id in local and not get_dataset_path(dataset_id).exists():  # ours: made here, never downloaded
            maze, goal = local[dataset_id]
            entry.dataset = make_point_maze_dataset(maze, goal=goal)
        else:
            entry.dataset = load_minari_dataset(dataset_id)
    except DatasetNotAvailableError as exc:
        entry.unavailable = str(exc).splitlines()[0]
        return entry
    saved = entry.dataset.storage.metadata.get("eval_env_spec")
    entry.env_spec = EnvSpec.from_json(saved) if saved else entry.dataset.spec.env_spec
    entry.provenance = dataset_provenance(entry.dataset, entry.env_spec)
    return entry


# ---------------------------------------------------------------------------------------------- methods


def tt_config(args: argparse.Namespace, key: str) -> AgentConfig:
    """The TT configuration: the preset in reward mode, with any step override."""
    config = cpu_preset() if args.preset == "cpu" else paper_preset(key)
    config = with_train_steps(config, args.tt_steps or (CPU_TT_STEPS if args.preset == "cpu" else PAPER_TT_STEPS))
    if args.preset == "cpu":  # attention dropout triples a CPU training step (see ModelConfig.attention_dropout)
        config.model = replace(config.model, attention_dropout=0.0)
    # the maze figures were measured with quantile bins ranked by probability and actions sampled from the bins (the
    # cpu preset's before it had uniform bins ranked by density and actions drawn around the mean)
    config.tokenizer = replace(config.tokenizer, strategy="quantile")
    config.planner = replace(config.planner, mode="reward", bin_ranking="probability", action_spread=None)
    config.model = replace(config.model, ordinal_embedding=False)  # and token embeddings alone
    return config


def baseline_steps(args: argparse.Namespace, method: str) -> int:
    """BC and IQL gradient steps: the override, else the preset's."""
    return args.baseline_steps or (CPU_BASELINE_STEPS[method] if args.preset == "cpu" else PAPER_BASELINE_STEPS)


def train_settings(cell: Cell, args: argparse.Namespace) -> dict[str, Any]:
    """What determines the trained agent; the ``tt-q`` cell trains nothing: it reuses ``tt``'s and ``iql``'s."""
    settings: dict[str, Any] = {"dataset_id": cell.entry.dataset_id, "method": cell.method, "seed": cell.seed}
    if cell.method == "tt":
        config = tt_config(args, cell.entry.key).to_dict()
        config.pop("planner")
        settings["config"] = config
    elif cell.method in ("iql", "bc"):
        settings["n_steps"] = baseline_steps(args, cell.method)
        if cell.method == "iql":
            settings["iql"] = IQLConfig.antmaze().to_dict()
    else:
        settings["reuses"] = {m: train_settings(replace(cell, method=m), args) for m in ("tt", "iql")}
    return settings


def eval_settings(cell: Cell, args: argparse.Namespace) -> dict[str, Any]:
    """What determines the evaluation (a change means re-evaluating the trained agent)."""
    settings: dict[str, Any] = {
        "episodes": args.episodes,
        "n_envs": min(args.n_envs, args.episodes),
        "max_episode_steps": args.max_episode_steps,
        "evaluation_seed": evaluation_seed(cell.seed),
    }
    if cell.method.startswith("tt"):
        planner = tt_config(args, cell.entry.key).planner
        settings["planner"] = planner_settings(replace(planner, mode="q" if cell.method == "tt-q" else "reward"))
    return settings


def train_or_load(cell: Cell, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The cell's agent (loaded when trained before, else trained and saved) and its training record."""
    check_settings(cell.dir, train_settings(cell, args))
    if cell.method == "tt-q":
        tt, tt_record = train_or_load(replace(cell, method="tt"), args)
        iql, iql_record = train_or_load(replace(cell, method="iql"), args)
        tt.q_function = iql.q_function()
        tt.configure_planner(mode="q")
        return tt, {"train_s": 0.0, "reuses": {"tt": tt_record, "iql": iql_record}}
    if cell.method == "tt":
        return train_or_load_tt(cell, tt_config(args, cell.entry.key), args.device)
    steps = baseline_steps(args, cell.method)
    if cell.method == "iql":
        return train_or_load_baseline(cell, IQLAgent, steps, args.device, config=IQLConfig.antmaze())
    return train_or_load_baseline(cell, BCAgent, steps, args.device)


def evaluate_maze(cell: Cell, agent: Any, args: argparse.Namespace) -> Row:
    """The cell's episodes, its success rate (%) and its mean normalized score."""
    result = evaluate_cell(cell, agent, args.episodes, args.n_envs, args.max_episode_steps)
    successes, normalized = result["successes"], result["normalized"]
    return {
        **result,
        "success_rate": None if successes is None else 100.0 * float(np.mean(successes)),
        "normalized_score": None if normalized is None else float(np.mean(normalized)),
    }


def run_maze_cell(cell: Cell, args: argparse.Namespace) -> Row:
    """The cell's row: cached, or trained (or loaded) and evaluated."""
    return run_cell(
        cell,
        train_settings(cell, args),
        eval_settings(cell, args),
        lambda: train_or_load(cell, args),
        lambda agent: evaluate_maze(cell, agent, args),
        train=not args.report_only,
    )


# ---------------------------------------------------------------------------------------------- report


def settings_lines(args: argparse.Namespace) -> list[str]:
    """What the preset (and any overrides) trains and evaluates."""
    config = tt_config(args, "pointmaze")
    m, t, p = config.model, config.train, config.planner
    return [
        f"- TT: {m.n_layer} layers x {m.n_embd} dims, {m.sequence_length} transitions, attention dropout "
        f"{m.attention_dropout if m.attention_dropout is not None else m.dropout}, {config.tokenizer.n_bins} "
        f"{config.tokenizer.strategy} bins; {t.n_steps:,} steps at batch {t.batch_size}; beam {p.beam_width}, "
        f"n_expand {p.n_expand}, horizon {p.horizon}, {p.max_context_transitions} context transitions",
        f"- IQL: {baseline_steps(args, 'iql'):,} steps, `IQLConfig.antmaze()` (expectile 0.9, temperature 10, "
        "rewards - 1), 2x256 networks, batch 256; BC: "
        f"{baseline_steps(args, 'bc'):,} steps, 2x256 MLP, batch 256",
        f"- Evaluation: {args.episodes} episodes per seed in the dataset's evaluation environment (see Datasets; "
        f"a new random start at every reset), {min(args.n_envs, args.episodes)} at a time; TT gets the real rewards "
        "in its context" + (f"; episodes cut at {args.max_episode_steps} steps" if args.max_episode_steps else ""),
        *override_lines(args),
    ]


def write_results(args: argparse.Namespace, entries: list[DatasetEntry], rows: list[Row], wall_s: float) -> None:
    """Write mazes.md and mazes.csv for the rows so far."""
    summaries = {metric: aggregate(rows, metric) for metric in ("success_rate", "normalized_score")}
    report = BenchmarkReport(args, entries, rows, summaries, wall_s, LABELS, settings_lines(args))
    write_mazes_report(report, PAPER_TABLE2)


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring), with the preset's defaults filled in."""
    return parse_benchmark_args(argv, __doc__, METHODS, DATASETS, "runs/mazes")


def main(argv: list[str] | None = None) -> int:
    """Run every cell (resuming earlier runs), rewrite the report after each, print the summary; 1 if a cell failed."""
    args = parse_args(argv)
    console = get_console()  # the one the trainers' and evaluate()'s progress bars use
    started = time.perf_counter()
    entries = [load_dataset(dataset_id) for dataset_id in args.datasets]
    for entry in entries:
        if entry.unavailable:
            console.print(f"[yellow]{entry.dataset_id}: not available[/] ({entry.unavailable})")
    rows, failures = run_cells(
        make_cells(entries, args.methods, args.seeds, args.workdir, args.only_seeds),
        lambda cell: run_maze_cell(cell, args),
        lambda row: f"success {fmt(row['success_rate'])}%, normalized {fmt(row['normalized_score'])}",
        lambda rows: write_results(args, entries, rows, time.perf_counter() - started),  # current after every cell
        console,
    )
    write_results(args, entries, rows, time.perf_counter() - started)
    success = aggregate(rows, "success_rate")
    table = Table(title=f"Mazes, preset {args.preset}: success rate % (mean ± s.e. over seeds)")
    table.add_column("dataset")
    for method in args.methods:
        table.add_column(LABELS[method], justify="right")
    for entry in entries:
        summaries = [success.get((entry.key, m)) for m in args.methods]
        table.add_row(entry.key, *(fmt(s.mean, s.se) if s else "—" for s in summaries))
    console.print(table)
    console.print(f"wrote {args.out / 'mazes.md'} and mazes.csv" + (f"; [red]{failures} failed[/]" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
