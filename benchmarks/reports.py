"""Writing a benchmark's results: number formats, the machine and command lines every report carries, markdown
tables, CSV files and the ours-beside-the-paper bar plot, and from them the locomotion and maze reports
(:func:`write_locomotion_report`, :func:`write_mazes_report`). Every file is written atomically: a reader never
sees half of one, even while a run rewrites it after each cell."""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tt_agents._io import write_atomic

if TYPE_CHECKING:
    from common import DatasetEntry, Row, Summaries

Number = tuple[float, float | None]
"""A score and its standard error (None where there is none)."""


@dataclass
class BenchmarkReport:
    """What a benchmark's report is written from: the run's options, its datasets, the cells' rows so far and
    their summaries over seeds (per metric), and the lines the script writes about its own settings."""

    args: argparse.Namespace
    """The parsed command line (``preset``, ``methods``, ``seeds``, ``episodes``, ``out``, ``workdir`` ...)."""
    entries: list[DatasetEntry]
    rows: list[Row]
    summaries: dict[str, Summaries]
    """Metric -> (dataset key, method) -> its summary over seeds."""
    wall_s: float
    """Wall time of this invocation so far."""
    labels: dict[str, str]
    """Method -> its column title."""
    settings: list[str]
    """The lines of the report's settings section (what the preset and any overrides train and evaluate)."""


def fmt(value: float | None, se: float | None = None, digits: int = 1) -> str:
    """``value ± se`` at ``digits`` decimals; a dash for a missing value."""
    if value is None:
        return "—"
    text = f"{value:.{digits}f}"
    return text + (f" ± {se:.{digits}f}" if se is not None else "")


def fmt_paper(value: float, se: float | None) -> str:
    """A published number as printed (its standard error at its own precision)."""
    return f"{value:.1f}" + (f" ± {se:g}" if se is not None else "")


def seeds_text(summary: Any, n_seeds: int, note: str = "") -> str:
    """A summary over seeds (``mean``, ``se``, ``n``) as ``mean ± s.e.`` and ``note``, saying how many of
    ``n_seeds`` seeds it has while a run is still under way; a dash when there is none yet."""
    if summary is None:
        return "—"
    partial = f" ({summary.n} of {n_seeds} seeds so far)" if summary.n < n_seeds else ""
    return fmt(summary.mean, summary.se) + note + partial


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """The machine line of a report: CPU, torch and its threads, GPU, Python."""
    text = f"{cpu_model()}, {os.cpu_count()} logical CPUs, torch {torch.__version__} with {torch.get_num_threads()} "
    text += "threads"
    if torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name(0)}"
    return text + f", Python {platform.python_version()}"


def command_line() -> str:
    """The command that is running, as it would be typed."""
    return "python " + shlex.join(sys.argv)


def override_lines(args: argparse.Namespace) -> list[str]:
    """A settings line naming the tiny-budget overrides in use (``--tt-steps`` ...); none without them."""
    names = ("tt_steps", "baseline_steps", "max_episode_steps")
    overrides = [f"--{name.replace('_', '-')} {getattr(args, name)}" for name in names if getattr(args, name)]
    if not overrides:
        return []
    return [
        f"- **Overrides (a smoke run, not a result):** {', '.join(overrides)}: the scores do not measure the preset."
    ]


def table_lines(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def write_markdown(path: Path, lines: list[str]) -> None:
    """``lines`` as a markdown file ending in one newline."""
    text = "\n".join(lines).rstrip("\n") + "\n"
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_markdown_with_rows(path: Path, lines: list[str], rows: list[dict[str, Any]]) -> None:
    """``lines`` and then the raw ``rows`` as a JSON block, as a markdown file (:func:`write_markdown`)."""
    write_markdown(path, [*lines, "", "Raw rows:", "", "```json", json.dumps(rows, indent=1), "```", ""])


def write_csv(path: Path, columns: list[str], rows: Iterable[dict[str, Any]]) -> None:
    """One CSV line per row (a dict over ``columns``; None is an empty field)."""

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)

    write_atomic(path, write)


def with_average(groups: list[str], methods: list[str], values: dict[tuple[str, str], Number]) -> None:
    """Add ``("average", method)`` to ``values``: the mean over ``groups`` of each method that has them all."""
    for method in methods:
        known = [values[(g, method)][0] for g in groups if (g, method) in values]
        if len(known) == len(groups):
            values[("average", method)] = (float(np.mean(known)), None)


def write_paper_bar_plot(
    path: Path,
    groups: list[str],
    methods: list[str],
    ours: dict[tuple[str, str], Number],
    paper: dict[tuple[str, str], Number],
    *,
    labels: dict[str, str],
    colors: dict[str, str],
    title: str,
    paper_label: str,
    ylabel: str = "normalized score",
) -> None:
    """Grouped bars, one group per entry of ``groups`` (plus their average when there are several, as in the
    paper's Figure 5): per method, ours solid with standard-error bars and the paper's hatched beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    ours, paper, groups = dict(ours), dict(paper), list(groups)
    if len(groups) > 1:
        for source in (ours, paper):
            with_average(groups, methods, source)
        groups.append("average")
    n_bars = 2 * len(methods)
    width = 0.8 / n_bars
    fig, ax = plt.subplots(figsize=(max(5.0, 1.5 * len(groups) + 1.5), 4.0))
    x = np.arange(len(groups))
    for i, m in enumerate(methods):
        for j, (source, style) in enumerate(((ours, {}), (paper, {"hatch": "///", "alpha": 0.5}))):
            offset = (2 * i + j - (n_bars - 1) / 2) * width
            values = [source.get((g, m), (np.nan, None)) for g in groups]
            heights = [v[0] for v in values]
            ax.bar(x + offset, heights, width, color=colors[m], edgecolor="black", linewidth=0.4, **style)
            with_se = [(x[k] + offset, v[0], v[1]) for k, v in enumerate(values) if v[1] is not None]
            if with_se:
                xs, ys, es = zip(*with_se, strict=True)
                ax.errorbar(xs, ys, yerr=es, fmt="none", ecolor="black", capsize=2, linewidth=0.8)
    ax.set_xticks(x, [g.replace("-", "\n", 1) for g in groups])
    ax.set_ylabel(ylabel)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_title(title)
    handles = [Patch(facecolor=colors[m], edgecolor="black", label=labels[m]) for m in methods]
    handles += [
        Patch(facecolor="white", edgecolor="black", label="ours (mean ± s.e. over seeds)"),
        Patch(facecolor="white", edgecolor="black", hatch="///", label=paper_label),
    ]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    write_atomic(path, lambda tmp: fig.savefig(tmp, format=path.suffix.lstrip("."), dpi=120, bbox_inches="tight"))
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- locomotion

LOCOMOTION_CSV_COLUMNS = (
    "dataset dataset_id method seed status score score_kind mean_return episodes episode_returns episode_lengths "
    "train_steps "
    "train_s eval_s ms_per_action paper_score machine"
).split()


def _locomotion_results(report: BenchmarkReport, paper: dict[str, dict[str, Number]]) -> list[str]:
    """The locomotion report's title, run lines and results table beside the paper's."""
    args, summary = report.args, report.summaries["score"]
    kinds = {s.rows[0]["score_kind"] for s in summary.values()}
    unit = (
        "normalized score" if kinds <= {"normalized"} else "score (normalized where the dataset has reference scores)"
    )
    cells_s = {status: 0.0 for status in ("here", "merged")}
    for r in (r for s in summary.values() for r in s.rows):
        cells_s["merged" if r["status"] == "merged" else "here"] += r["train"]["train_s"] + r["eval_s"]
    total_s = cells_s["here"]
    lines = [
        "# D4RL locomotion: Trajectory Transformer, BC and IQL beside the paper (Table 1, Figure 5)",
        "",
        f"Preset **`{args.preset}`**" + (" (reduced for a CPU; see Settings)" if args.preset == "cpu" else "") + ".",
        f"Command: `{command_line()}`",
        f"Machine (this invocation): {machine()}.",
        f"Wall time: this invocation {report.wall_s / 60:.1f} min; the cells of its work folder (train + evaluate, "
        f"including earlier resumed invocations) {total_s / 60:.1f} min"
        + (
            f", run as Ray tasks of {args.cpus_per_cell:g} core(s) each: {total_s / report.wall_s:.1f} cells at a "
            "time on average (where every cell ran in this invocation)."
            if getattr(args, "ray", False)
            else ", summed over the cells (an invocation without --ray runs its cells one at a time)."
        )
        + (
            f" Merged cells: {cells_s['merged'] / 60:.1f} min (train + evaluate, on the machines that ran them)."
            if cells_s["merged"]
            else ""
        ),
        "",
        f"## Results: {unit}, mean ± standard error over seeds",
        "",
        f"Ours: {args.seeds} seed(s) per cell, each seed a separately trained agent whose score is the mean over its "
        f"{args.episodes} episode(s); ± is the standard error over seeds (none with one seed). Paper: Janner et al. "
        "(2021) Table 1 on the D4RL v2 datasets, TT mean ± s.e. over 15 runs (5 models × 3 trajectories); its BC "
        "column is quoted there from Kumar et al. (2020a). †IQL: the TT paper reports IQL only on AntMaze, so the "
        "IQL column is Kostrikov et al. (2021), Table 1. *Data*: the mean score of the dataset's own episodes.",
        "",
    ]
    header = ["dataset", "data", *(report.labels[m] for m in args.methods)]
    header += [f"paper {report.labels[m]}" + ("†" if m == "iql" else "") for m in args.methods]
    rows = []
    for entry in report.entries:
        row = [entry.key, "not available" if entry.unavailable else fmt(entry.provenance.get("data_score"))]
        for method in args.methods:
            s = summary.get((entry.key, method))
            row.append(
                seeds_text(s, args.seeds, "" if s is None or s.rows[0]["score_kind"] == "normalized" else " (return)")
            )
        row += [fmt_paper(*paper[entry.key][m]) if m in paper[entry.key] else "—" for m in args.methods]
        rows.append(row)
    return lines + table_lines(header, rows) + ["", "![ours vs paper](locomotion.png)", ""]


def _locomotion_provenance(entries: list[DatasetEntry]) -> list[str]:
    lines = [
        "## Datasets (provenance)",
        "",
        "**Ours are not the D4RL v2 datasets** the paper used. `mujoco/*` ids are Farama's Minari re-creation "
        "of D4RL's MuJoCo datasets in Gymnasium v5 environments (new policies and data); `tt-agents/*` ids are "
        "made on this machine by `tt_agents.data_making.make_locomotion_dataset` (SB3 SAC, the D4RL recipe, usually "
        "with a reduced budget); anything else is whatever the id names. What each dataset's metadata says:",
        "",
    ]
    for entry in entries:
        if entry.unavailable:
            lines.append(f"- `{entry.requested}`: **not available** ({entry.unavailable}).")
            continue
        p = entry.provenance
        fallback = f" (fallback for `{entry.requested}`)" if entry.dataset_id != entry.requested else ""
        if entry.measured_elsewhere:
            fallback += " (measured elsewhere: not on the machine that wrote this report)"
        refs = (
            f"reference scores {p['ref_min_score']:.1f} (random) / {p['ref_max_score']:.1f} (expert)"
            if p["ref_min_score"] is not None
            else "no reference scores (raw returns reported)"
        )
        lines.append(
            f"- `{entry.dataset_id}`{fallback}, environment `{p['env_id']}`: {p['total_episodes']} episodes, "
            f"{p['total_steps']:,} steps, mean return {p['data_mean_return']:.1f}; {refs}; algorithm "
            f'"{p["algorithm_name"]}". Description: "{p["description"]}"'
        )
    return lines


def _lengths(lengths: list[int]) -> str:
    """Episode lengths, shortest first, the shortest in bold when it ended within 50 steps (a fall at the start)."""
    ordered = sorted(lengths)
    return " ".join(f"**{n}**" if n <= 50 else str(n) for n in ordered)


def _cpu(machine_line: str | None) -> str:
    """The CPU model of a :func:`machine` line; a dash when there is none."""
    return "—" if not machine_line else machine_line.split(",")[0]


def _shown(path: Path) -> Path:
    """``path`` relative to the working directory when it lies under it (reports name no machine's folders)."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def _locomotion_cells(rows: list[Row], workdir: Path) -> list[str]:
    table = []
    for row in rows:
        if row.get("score") is None:
            table.append([row["dataset"], row["method"], str(row["seed"]), *["—"] * 7, row["status"]])
            continue
        train, ms = row["train"], row.get("ms_per_action")
        steps = train.get("n_steps")
        table.append(
            [row["dataset"], row["method"], str(row["seed"]), f"{row['score']:.1f}", _lengths(row["lengths"])]
            + ["—" if steps is None else f"{steps:,}"]
            + [f"{train['train_s']:.0f}" + (" (resumed)" if train.get("resumed") else ""), f"{row['eval_s']:.0f}"]
            + ["—" if ms is None else f"{ms:.0f}", _cpu(row.get("machine")), row["status"]]
        )
    header = [
        "dataset",
        "method",
        "seed",
        "score",
        "episode lengths",
        "steps trained",
        "train (s)",
        "evaluate (s)",
        "ms/action",
        "CPU",
        "status",
    ]
    return ["## Every cell: episode lengths and wall time", "", *table_lines(header, table)] + [
        "",
        "Train time is that of the invocation that finished training (a resumed TT run counts only its last part); "
        "*cached* cells were finished by an earlier invocation; *merged* cells come from the results files given "
        "with `--merge` (another machine's or an earlier checkout's `locomotion.json`). CPU: the machine that "
        "evaluated the cell (— where it was not recorded). Per-seed and per-episode values: `locomotion.csv`, "
        f"`locomotion.json` and `result.json` in each cell folder under `{_shown(workdir)}`.",
        "",
    ]


def _locomotion_csv_row(row: Row, paper: dict[str, dict[str, Number]]) -> dict[str, Any]:
    """One cell's line of ``locomotion.csv``."""
    paper_score = paper.get(row["dataset"], {}).get(row["method"])
    line = {k: row[k] for k in ("dataset", "dataset_id", "method", "seed", "status")}
    line["paper_score"] = None if paper_score is None else paper_score[0]
    if row.get("score") is None:
        return line
    ms = row.get("ms_per_action")
    return line | {
        "score": f"{row['score']:.3f}",
        "score_kind": row.get("score_kind", ""),
        "mean_return": f"{np.mean(row['returns']):.3f}",
        "episodes": len(row["returns"]),
        "episode_returns": " ".join(f"{r:.2f}" for r in row["returns"]),
        "episode_lengths": " ".join(str(n) for n in row["lengths"]),
        "train_steps": row["train"]["n_steps"],
        "train_s": f"{row['train']['train_s']:.1f}",
        "eval_s": f"{row['eval_s']:.1f}",
        "ms_per_action": None if ms is None else f"{ms:.1f}",
        "machine": row.get("machine"),
    }


def write_locomotion_report(
    report: BenchmarkReport, paper: dict[str, dict[str, Number]], colors: dict[str, str]
) -> None:
    """``locomotion.md`` (results beside ``paper``'s numbers per dataset key, provenance, settings, wall time per
    cell), ``locomotion.csv`` (one line per cell) and, once a cell has a score, ``locomotion.png``."""
    args, summary = report.args, report.summaries["score"]
    lines = _locomotion_results(report, paper) + _locomotion_provenance(report.entries)
    lines += ["", "## Settings", "", *report.settings, "", *_locomotion_cells(report.rows, args.workdir)]
    args.out.mkdir(parents=True, exist_ok=True)
    write_markdown(args.out / "locomotion.md", lines)
    write_csv(args.out / "locomotion.csv", LOCOMOTION_CSV_COLUMNS, [_locomotion_csv_row(r, paper) for r in report.rows])
    keys = [e.key for e in report.entries if not e.unavailable and any((e.key, m) in summary for m in args.methods)]
    if keys:
        write_paper_bar_plot(
            args.out / "locomotion.png",
            keys,
            args.methods,
            {key: (s.mean, s.se) for key, s in summary.items()},
            {(k, m): v for k in keys for m, v in paper[k].items() if m in args.methods},
            labels=report.labels,
            colors=colors,
            title="D4RL locomotion: ours vs the paper",
            paper_label="paper (Table 1; IQL: Kostrikov et al.)",
        )


# ---------------------------------------------------------------------------------------------- mazes

MAZES_CSV_COLUMNS = ["dataset", "dataset_id", "method", "seed", "status", "success_rate", "normalized_score"]


def _maze_claim(entries: list[DatasetEntry], success: Summaries) -> list[str]:
    """The paper's claim checked on our success rates: does TT+Q beat reward-mode TT and match IQL?"""
    lines = []
    for entry in entries:
        rates = {m: success[(entry.key, m)].mean for m in ("tt", "tt-q", "iql") if (entry.key, m) in success}
        if len(rates) < 3:
            continue
        beats_tt = "yes" if rates["tt-q"] > rates["tt"] else "**no**"
        matches_iql = "yes" if rates["tt-q"] >= rates["iql"] else "**no**"
        lines.append(
            f"- {entry.key}: TT+Q beats TT (reward mode): {beats_tt} ({rates['tt-q']:.0f}% vs {rates['tt']:.0f}%); "
            f"TT+Q at least as good as IQL: {matches_iql} ({rates['tt-q']:.0f}% vs {rates['iql']:.0f}%)"
        )
    return ["## The paper's claim on our data", "", *lines, ""] if lines else []


def _maze_results(report: BenchmarkReport) -> list[str]:
    args, labels = report.args, [report.labels[m] for m in report.args.methods]
    lines = [
        "# Sparse-reward mazes: TT, TT+Q (IQL), IQL and BC beside the paper (Table 2)",
        "",
        f"Preset **`{args.preset}`**. Command: `{command_line()}`",
        f"Machine: {machine()}. Wall time of this invocation: {report.wall_s / 60:.1f} min.",
        "",
        f"Mean ± standard error over seeds (each seed a separately trained agent evaluated on {args.episodes} "
        "episodes). TT+Q plans with the seed's TT model and the seed's IQL Q-function.",
        "",
    ]
    for title, metric in (("Success rate (%)", "success_rate"), ("Normalized score", "normalized_score")):
        summary = report.summaries[metric]
        rows = [
            [entry.key]
            + [
                "not available" if entry.unavailable else seeds_text(summary.get((entry.key, m)), args.seeds)
                for m in args.methods
            ]
            for entry in report.entries
        ]
        lines += [f"## {title}", "", *table_lines(["dataset", *labels], rows), ""]
    return lines


def _maze_provenance(entries: list[DatasetEntry]) -> list[str]:
    lines = ["## Datasets (provenance)", ""]
    for entry in entries:
        if entry.unavailable:
            lines.append(f"- `{entry.requested}`: **not available** ({entry.unavailable})")
            continue
        p = entry.provenance
        refs = (
            f", reference scores {p['ref_min_score']:.1f} / {p['ref_max_score']:.1f}"
            if p["ref_min_score"] is not None
            else ""
        )
        lines.append(
            f"- `{entry.dataset_id}`: {p['total_episodes']} episodes, {p['total_steps']:,} steps, evaluation "
            f'environment `{p["env_id"]}` {p["env_kwargs"]}{refs}. Description: "{p["description"]}"'
        )
    return lines


def _maze_cells(rows: list[Row]) -> list[str]:
    table = []
    for row in rows:
        name = [row["dataset"], row["method"], str(row["seed"])]
        if row.get("returns") is None:
            table.append(name + ["—"] * 4 + [row["status"]])
            continue
        table.append(
            name
            + [fmt(row["success_rate"]), fmt(row["normalized_score"]), f"{row['train']['train_s']:.0f}"]
            + [f"{row['ms_per_action']:.0f}", row["status"]]
        )
    header = ["dataset", "method", "seed", "success %", "normalized", "train (s)", "ms/action", "status"]
    return ["## Cells", "", *table_lines(header, table)]


def write_mazes_report(report: BenchmarkReport, paper: dict[str, dict[str, Number]]) -> None:
    """``mazes.md`` (success rates and normalized scores, the paper's claim checked on them, settings, the
    ``paper`` table, provenance, cells) and ``mazes.csv`` (one line per cell)."""
    args, methods = report.args, report.args.methods
    paper_rows = [[key] + [fmt(*row[m]) if m in row else "—" for m in methods] for key, row in paper.items()]
    lines = _maze_results(report) + _maze_claim(report.entries, report.summaries["success_rate"])
    lines += ["## Settings", "", *report.settings, ""]
    lines += ["## The paper's Table 2 (AntMaze v0, D4RL; not our data)", ""]
    lines += table_lines(["dataset", *(report.labels[m] for m in methods)], paper_rows)
    lines += [
        "",
        "Paper: Janner et al. (2021) Table 2; its BC and IQL columns are quoted there from Kostrikov et al. (2021); "
        "it reports no reward-mode TT on AntMaze.",
        "",
    ]
    lines += _maze_provenance(report.entries) + ["", *_maze_cells(report.rows)]
    args.out.mkdir(parents=True, exist_ok=True)
    write_markdown(args.out / "mazes.md", lines)
    write_csv(
        args.out / "mazes.csv", MAZES_CSV_COLUMNS, [{k: row.get(k) for k in MAZES_CSV_COLUMNS} for row in report.rows]
    )
