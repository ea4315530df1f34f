"""D4RL locomotion, the paper's Table 1 and Figure 5: TT (quantile and uniform), BC and IQL, ours beside theirs.

For every dataset (a Minari id: ``mujoco/hopper/medium-v0`` ... where those are available, or a dataset made
locally with ``tt-agents make-dataset hopper medium``) and every method and seed, one *cell* trains an agent on
the dataset and evaluates it in the dataset's environment; a seed's score is the mean normalized score
(:func:`tt_agents.evaluation.normalized_score` with the dataset's reference scores) over its episodes, and the
table gives the mean ± standard error over seeds.

Methods
    ``tt-quantile`` / ``tt-uniform``: the Trajectory Transformer with quantile / uniform discretization,
    reward-mode beam search (predicted rewards + reward-to-go), real rewards in the planning context.
    ``tt-imitation``: the ``tt-quantile`` cell's agent (trained once, reused) planning in imitation mode
    (likelihood search), the paper's behaviour-cloning use of the same model.
    ``bc``: :class:`tt_agents.baselines.BCAgent`; ``iql``: :class:`tt_agents.baselines.IQLAgent`
    (deterministic actions). Every method of a seed is evaluated by :func:`tt_agents.evaluate` from the same
    starting states.

Presets (``--preset``)
    ``cpu``: fits a 2-core CPU; reduced settings, each named in the results file: ``cpu_preset()`` (2 layers x
    64 dims, batch 64) without attention dropout, trained for its budget (4000 steps and at least 5 passes over
    the data), beam 32, horizon 5;
    BC 50k and IQL 30k steps (:data:`CPU_BASELINE_STEPS`); 2 seeds x 10 episodes. The results file states the
    measured wall time of every cell.
    ``paper``: for a GPU: ``paper_preset(name)`` (4 layers x 128, batch 256, beam 128 / horizon 15 with the
    authors' per-dataset overrides) trained for the authors' equivalent of 50 epochs of a 1M-transition
    dataset (80 for hopper and walker2d medium-replay); BC and IQL 1M steps; 5 seeds x 3 episodes (the
    paper: 5 trained Transformers x 3 trajectories).

Resumable per cell: every cell keeps its trained agent and ``result.json`` under ``--workdir``; a rerun skips
finished cells, loads trained agents that still need evaluating, and resumes TT and IQL training from their
last checkpoints (a BC cell, minutes long, retrains from scratch if interrupted).

Cells run one by one, or as Ray tasks with ``--ray`` (a local Ray, one cell per core) or ``--ray-address`` (an
existing cluster): see ``grid.py``; a ``tt-imitation`` cell starts once its ``tt-quantile`` cell has finished (and
fails without running when that cell failed).

Outputs in ``--out``: ``locomotion.md`` (table with the paper's numbers, dataset provenance, command, machine,
wall times), ``locomotion.csv`` (one row per dataset, method and seed), ``locomotion.json`` (every dataset's
provenance and every scored cell) and ``locomotion.png`` (bar plot).

Grids shared between machines or checkouts without a shared work folder: ``--merge`` takes earlier
``locomotion.json`` files; their cells are shown (status *merged*) and not run again, a dataset only they know is
shown with their provenance, and a later file's cells of another recording of a dataset replace the earlier
file's. Another CPU records other episodes of the same level (``datasets.md``), so a dataset this machine recorded
otherwise is shown as the merged files measured it, and none of its cells runs here: cells of two recordings never
share a row.

    tt-agents make-dataset hopper medium --cpu              # the cpu preset's data (once)
    python benchmarks/d4rl_locomotion.py                    # cpu preset on tt-agents/hopper/medium-v0
    python benchmarks/d4rl_locomotion.py --preset paper     # the 9 mujoco/* datasets, on a GPU
    python benchmarks/d4rl_locomotion.py --preset paper --ray-address auto   # ... as tasks on a Ray cluster
    python benchmarks/d4rl_locomotion.py --datasets tt-agents/hopper/medium-v0 tt-agents/walker2d/medium-v0 \\
        --report-only --merge benchmarks/results/locomotion.json other/locomotion.json   # two machines' cells
    python benchmarks/d4rl_locomotion.py --datasets smoke/invertedpendulum/medium-v0 --tt-steps 20 \\
        --baseline-steps 20 --seeds 1 --episodes 1 --max-episode-steps 20 --out /tmp/out --workdir /tmp/work
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
    MergedResults,
    Row,
    Summaries,
    aggregate,
    check_settings,
    dataset_provenance,
    evaluate_cell,
    evaluation_seed,
    grid_rows,
    make_cells,
    merge_entries,
    parse_benchmark_args,
    planner_settings,
    read_merged_results,
    results_record,
    run_cell,
    run_cells,
    same_settings,
    train_or_load_baseline,
    train_or_load_tt,
    with_train_steps,
)
from grid import RayOptions, run_cells_on_ray
from paper_numbers import (
    PAPER_BASELINE_STEPS,
    PAPER_EPISODES,
    PAPER_SEEDS,
    authors_epochs,
    authors_tt_steps,
    locomotion_paper_scores,
)
from reports import BenchmarkReport, fmt, fmt_paper, machine, override_lines, write_locomotion_report
from rich import get_console
from rich.table import Table

from tt_agents import AgentConfig, DatasetNotAvailableError, cpu_preset, paper_preset
from tt_agents._io import write_json_atomic
from tt_agents.baselines import BCAgent, IQLAgent
from tt_agents.config import TrainConfig
from tt_agents.data_loading import load_minari_dataset
from tt_agents.data_making import LOCOMOTION_LEVELS, SHORT_ENV_NAMES, locomotion_dataset_id

METHODS = ("tt-quantile", "tt-uniform", "tt-imitation", "bc", "iql")
LABELS = {
    "tt-quantile": "TT (quantile)",
    "tt-uniform": "TT (uniform)",
    "tt-imitation": "TT (imitation)",
    "bc": "BC",
    "iql": "IQL",
}
COLORS = {
    "tt-quantile": "#1f77b4",
    "tt-uniform": "#9ecae1",
    "tt-imitation": "#ff7f0e",
    "bc": "#7f7f7f",
    "iql": "#2ca02c",
}
TRAINED_WITH = {"tt-imitation": "tt-quantile"}
"""Methods that plan with another method's trained agent (same dataset and seed) instead of training their own."""
ENVS = ("halfcheetah", "hopper", "walker2d")
LEVELS = ("medium-expert", "medium", "medium-replay")
DATASETS = {
    "cpu": ("tt-agents/hopper/medium-v0",),
    "paper": tuple(f"mujoco/{env}/{level}-v0" for level in LEVELS for env in ENVS),
}
"""The datasets of each preset; ``paper``: the 9 of the paper's Table 1, as Farama's Minari ids."""

CPU_BASELINE_STEPS = {"bc": 50_000, "iql": 30_000}
"""BC and IQL gradient steps of the ``cpu`` preset (paper: 1M each), batch 256."""


# ---------------------------------------------------------------------------------------------- datasets


def split_id(dataset_id: str) -> tuple[str, str]:
    """``"mujoco/hopper/medium-v0"`` -> ``("hopper", "medium")`` (the last namespace part and the name)."""
    from minari.dataset.minari_dataset import parse_dataset_id

    try:
        namespace, name, _ = parse_dataset_id(dataset_id)
    except (ValueError, TypeError):
        raise ValueError(f"malformed dataset id {dataset_id!r}; Minari ids look like 'namespace/name-vN'") from None
    env = (namespace or "").split("/")[-1]
    return env, name


def candidates(dataset_id: str) -> list[str]:
    """The id, then for a ``mujoco/ENV/LEVEL-vN`` id the locally made ``tt-agents/ENV/LEVEL-v0``."""
    env, level = split_id(dataset_id)
    ids = [dataset_id]
    if dataset_id.startswith("mujoco/") and env in SHORT_ENV_NAMES and level in LOCOMOTION_LEVELS:
        ids.append(locomotion_dataset_id(env, level))
    return ids


def resolve_dataset(requested: str) -> DatasetEntry:
    """Load ``requested`` (or its local fallback); an unavailable dataset is reported, not raised."""
    env, level = split_id(requested)
    entry = DatasetEntry(requested=requested, key=f"{env}-{level}")
    reasons = []
    for dataset_id in candidates(requested):
        try:
            entry.dataset, entry.dataset_id = load_minari_dataset(dataset_id), dataset_id
            break
        except DatasetNotAvailableError as exc:
            reason = str(exc).splitlines()[0].rstrip(".")
            if dataset_id.startswith("tt-agents/"):
                local_env, local_level = split_id(dataset_id)
                reason += f" (make it with: tt-agents make-dataset {local_env} {local_level} --cpu)"
            reasons.append(f"{dataset_id}: {reason}")
    if entry.dataset is None:
        entry.unavailable = "; ".join(reasons)
        return entry
    entry.env_spec = entry.dataset.spec.env_spec
    if entry.env_spec is None:
        import gymnasium as gym

        if env not in SHORT_ENV_NAMES:
            entry.unavailable = f"{entry.dataset_id} records no environment and {env!r} is not a known one"
            return entry
        entry.env_spec = gym.spec(SHORT_ENV_NAMES[env])
    entry.provenance = dataset_provenance(entry.dataset, entry.env_spec)
    return entry


# ---------------------------------------------------------------------------------------------- methods


def tt_config(args: argparse.Namespace, method: str, key: str) -> AgentConfig:
    """The TT configuration of a cell: the preset, the cell's discretization, planning mode, step overrides."""
    if args.preset == "cpu":
        config = cpu_preset()  # 4000 steps and at least 5 passes over the data
    else:
        config = paper_preset(key)
        config = with_train_steps(config, authors_tt_steps(key, config.train.batch_size))
    if args.tt_steps:
        config = with_train_steps(config, args.tt_steps)
    config.tokenizer = replace(config.tokenizer, strategy="uniform" if method == "tt-uniform" else "quantile")
    # every cell of the grid planned with actions sampled from the bins (the cpu preset's before its action_spread)
    mode = "imitation" if method == "tt-imitation" else "reward"
    config.planner = replace(config.planner, mode=mode, action_spread=None)
    # and was trained with token embeddings alone (the cpu preset's before its ordinal embedding)
    config.model = replace(config.model, ordinal_embedding=False)
    return config


def baseline_steps(args: argparse.Namespace, method: str) -> int:
    """BC and IQL gradient steps: the override, else the preset's."""
    return args.baseline_steps or (CPU_BASELINE_STEPS[method] if args.preset == "cpu" else PAPER_BASELINE_STEPS)


def train_settings(cell: Cell, args: argparse.Namespace) -> dict[str, Any]:
    """What determines the trained agent (a change means retraining: the cell refuses to mix them)."""
    if cell.method in TRAINED_WITH:
        return {"reuses": train_settings(replace(cell, method=TRAINED_WITH[cell.method]), args)}
    settings: dict[str, Any] = {"dataset_id": cell.entry.dataset_id, "method": cell.method, "seed": cell.seed}
    if cell.method.startswith("tt-"):
        config = tt_config(args, cell.method, cell.entry.key).to_dict()
        config.pop("planner")
        settings["config"] = config
    else:
        settings["n_steps"] = baseline_steps(args, cell.method)
    return settings


def eval_settings(cell: Cell, args: argparse.Namespace) -> dict[str, Any]:
    """What determines the evaluation (a change means re-evaluating the trained agent)."""
    settings: dict[str, Any] = {
        "episodes": args.episodes,
        "n_envs": min(args.n_envs, args.episodes),
        "max_episode_steps": args.max_episode_steps,
        "evaluation_seed": evaluation_seed(cell.seed),
    }
    if cell.method.startswith("tt-"):
        settings["planner"] = planner_settings(tt_config(args, cell.method, cell.entry.key).planner)
    return settings


def train_or_load(cell: Cell, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The cell's trained agent (loaded when it exists, else trained and saved) and its training record."""
    check_settings(cell.dir, train_settings(cell, args))
    if cell.method in TRAINED_WITH:
        agent, record = train_or_load(replace(cell, method=TRAINED_WITH[cell.method]), args)
        agent.configure_planner(**eval_settings(cell, args)["planner"])
        return agent, {**record, "train_s": 0.0, "reuses": TRAINED_WITH[cell.method]}
    if cell.method.startswith("tt-"):
        agent, record = train_or_load_tt(cell, tt_config(args, cell.method, cell.entry.key), args.device)
        agent.configure_planner(**eval_settings(cell, args)["planner"])
        return agent, record
    agent_class = BCAgent if cell.method == "bc" else IQLAgent
    return train_or_load_baseline(cell, agent_class, baseline_steps(args, cell.method), args.device)


def evaluate_locomotion(cell: Cell, agent: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The cell's episodes and its score: the mean normalized return (the mean return without reference scores)."""
    result = evaluate_cell(cell, agent, args.episodes, args.n_envs, args.max_episode_steps)
    normalized = result["normalized"]
    score = np.mean(normalized if normalized is not None else result["returns"])
    kind = "return" if normalized is None else "normalized"
    return {**result, "score": float(score), "score_kind": kind, "machine": machine()}


def run_locomotion_cell(cell: Cell, args: argparse.Namespace) -> dict[str, Any]:
    """The cell's row: cached, or trained (or loaded) and evaluated."""
    return run_cell(
        cell,
        train_settings(cell, args),
        eval_settings(cell, args),
        lambda: train_or_load(cell, args),
        lambda agent: evaluate_locomotion(cell, agent, args),
        train=not args.report_only,
    )


def run_requested_cell(requested: str, method: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """:func:`run_locomotion_cell` in a process of its own (a Ray task): the dataset is loaded there."""
    entry = resolve_dataset(requested)
    if entry.unavailable:
        raise RuntimeError(f"{requested}: not available to this task ({entry.unavailable})")
    return run_locomotion_cell(Cell(entry, method, seed, args.workdir), args)


# ---------------------------------------------------------------------------------------------- report


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return " × ".join(_show(v) for v in value)
    if isinstance(value, str):
        return value
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _budget(train: TrainConfig) -> str:
    """The TT training budget as the preset states it (the steps each cell trained are in its row)."""
    if train.min_epochs:
        return f"{train.n_steps:,} steps and at least {train.min_epochs:g} passes over the training windows"
    return f"{train.n_steps:,} steps"


def _attention_dropout(model: Any) -> float:
    return model.dropout if model.attention_dropout is None else model.attention_dropout


def preset_lines(args: argparse.Namespace, key: str) -> list[str]:
    """What the preset (and any overrides) trains and evaluates, with every reduction from the paper named."""
    tt = tt_config(args, "tt-quantile", key)
    m, t, p = tt.model, tt.train, tt.planner
    bc, iql = baseline_steps(args, "bc"), baseline_steps(args, "iql")
    scope = "every dataset" if args.preset == "cpu" else key  # the paper preset's planning differs per dataset
    lines = [
        f"- TT ({scope}): {m.n_layer} layers × {m.n_embd} dims, {m.n_head} heads, {tt.tokenizer.n_bins} bins, context "
        f"{m.sequence_length} transitions; {_budget(t)} at batch {t.batch_size}, lr {t.learning_rate:g} "
        f"(warm-up {t.warmup_steps}, cosine to {t.min_lr_ratio:g}×); reward planning with beam {p.beam_width}, "
        f"n_expand {p.n_expand}, horizon {p.horizon}, {p.max_context_transitions} context transitions, "
        f"cdf_act {p.cdf_act}, bins ranked by {p.bin_ranking}, discount {p.discount}; replanning every step with the "
        "real rewards in the context.",
        f"- BC (2×256 MLP, tanh-squashed, MSE): {bc:,} steps; IQL (τ 0.7, β 3, 2×256 networks, the IQL paper's "
        f"locomotion settings): {iql:,} steps; batch 256 both.",
        f"- Evaluation: {args.seeds} seed(s) (a separately trained agent each) × {args.episodes} episode(s); "
        f"{min(args.n_envs, args.episodes)} environments at a time"
        + (f"; episodes cut at {args.max_episode_steps} steps" if args.max_episode_steps else "")
        + ".",
    ]
    paper = paper_preset(key)
    paper_steps = authors_tt_steps(key, paper.train.batch_size)
    pm, pt, pp = paper.model, paper.train, paper.planner
    compare = [  # (what, ours, the paper's, how the paper's is written)
        ("layers × dims", (m.n_layer, m.n_embd), (pm.n_layer, pm.n_embd), f"{pm.n_layer} × {pm.n_embd}"),
        ("attention dropout", _attention_dropout(m), _attention_dropout(pm), _attention_dropout(pm)),
        ("batch", t.batch_size, pt.batch_size, pt.batch_size),
        ("lr", t.learning_rate, pt.learning_rate, f"{pt.learning_rate:g}"),
        (
            "TT steps",
            _budget(t),
            f"{paper_steps:,} steps",
            f"{paper_steps:,} = {authors_epochs(key)} epochs of 1M transitions",
        ),
        ("beam", p.beam_width, pp.beam_width, pp.beam_width),
        ("horizon", p.horizon, pp.horizon, pp.horizon),
        ("action mass kept", p.cdf_act, pp.cdf_act, pp.cdf_act),
        ("bins ranked by", p.bin_ranking, pp.bin_ranking, pp.bin_ranking),
        ("BC steps", bc, PAPER_BASELINE_STEPS, f"{PAPER_BASELINE_STEPS:,}"),
        ("IQL steps", iql, PAPER_BASELINE_STEPS, f"{PAPER_BASELINE_STEPS:,}"),
        ("seeds × episodes", (args.seeds, args.episodes), (PAPER_SEEDS, PAPER_EPISODES), "5 × 3"),
    ]
    reduced = [f"{name} {_show(ours)} (paper {text})" for name, ours, theirs, text in compare if ours != theirs]
    if reduced:
        lines.append(f"- **Differs from the paper ({args.preset} preset):** " + "; ".join(reduced) + ".")
    if args.preset == "paper":
        lines.append(
            "- Paper preset: `paper_preset(name)` with its per-dataset planning overrides; TT steps are the "
            "authors' `n_epochs_ref` epochs (50; 80 for hopper/walker2d medium-replay) of a 1M-transition dataset "
            "at batch 256. Our schedule is warm-up then a clamped cosine (the authors' cosine restarts), and we "
            "replan every step (the authors' hopper-medium config plans every 5)."
        )
    return lines + override_lines(args)


def write_results(
    args: argparse.Namespace, entries: list[DatasetEntry], rows: list[Row], merged: MergedResults, wall_s: float
) -> Summaries:
    """Write locomotion.md, .csv and .png for the rows so far, and locomotion.json (what ``--merge`` reads: these
    rows over all the ``merged`` ones, shown or not); returns the rows' summary over seeds."""
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "locomotion.json", results_record(entries, rows, merged))
    summary = aggregate(rows, "score")
    key = next((e.key for e in entries if not e.unavailable), "hopper-medium")
    report = BenchmarkReport(args, entries, rows, {"score": summary}, wall_s, LABELS, preset_lines(args, key))
    write_locomotion_report(report, {e.key: locomotion_paper_scores(e.key) for e in entries}, COLORS)
    return summary


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring), with the preset's defaults filled in."""
    return parse_benchmark_args(argv, __doc__, METHODS, DATASETS, "runs/locomotion", mergeable=True)


def print_summary(args: argparse.Namespace, entries: list[DatasetEntry], summary: Summaries) -> None:
    """The results beside the paper's, on the console."""
    table = Table(title=f"D4RL locomotion, preset {args.preset}: ours (mean ± s.e. over seeds) / [dim]paper[/]")
    table.add_column("dataset")
    for method in args.methods:
        table.add_column(LABELS[method], justify="right")
    for entry in entries:
        paper = locomotion_paper_scores(entry.key)
        texts = []
        for m in args.methods:
            s = summary.get((entry.key, m))
            ours = "n/a" if entry.unavailable else fmt(s.mean, s.se) if s else "—"
            texts.append(ours + "\n[dim]" + (fmt_paper(*paper[m]) if m in paper else "—") + "[/]")
        table.add_row(entry.key, *texts)
    get_console().print(table)


def shown_merged_cells(
    entries: list[DatasetEntry], merged: MergedResults, args: argparse.Namespace
) -> tuple[MergedResults, list[str]]:
    """The merged cells this run shows instead of running them, and a warning for each one left out because it was
    recorded with other training or evaluation settings than this run's (rows from before cells recorded their
    settings are taken as they are)."""
    by_key = {e.key: e for e in entries}
    shown, warnings = {}, []
    for (key, method, seed), row in merged.rows.items():
        if key not in by_key or method not in args.methods:
            continue
        cell = Cell(by_key[key], method, seed, args.workdir)
        wanted = {"settings": train_settings(cell, args), "eval_settings": eval_settings(cell, args)}
        other = [name for name, value in wanted.items() if name in row and not same_settings(row[name], value)]
        if other:
            warnings.append(f"{cell.name}: the merged cell was measured with other {' and '.join(other)}")
            continue
        shown[(key, method, seed)] = row
    return MergedResults(merged.datasets, shown), warnings


def cells_to_run(cells: list[Cell], shown: MergedResults) -> tuple[list[Cell], list[str]]:
    """The cells not shown from merged results, and a warning for each left out because the agent it reuses
    (``TRAINED_WITH``) was trained elsewhere and is not in the work folder: it would be trained again here, and the
    row would not be the merged agent's."""
    kept, warnings = [], []
    for cell in cells:
        if (cell.entry.key, cell.method, cell.seed) in shown.rows:
            continue
        base = TRAINED_WITH.get(cell.method)
        if base is not None and (cell.entry.key, base, cell.seed) in shown.rows:
            if not any((cell.dir_of(base) / name).exists() for name in ("agent", "agent.pt")):
                warnings.append(f"{cell.name}: not run, its {base} agent was trained elsewhere (a merged cell)")
                continue
        kept.append(cell)
    return kept, warnings


def main(argv: list[str] | None = None) -> int:
    """Run every cell (resuming earlier runs), rewrite the report after each, print the summary; 1 if a cell failed."""
    args = parse_args(argv)
    console = get_console()  # the one the trainers' and evaluate()'s progress bars use
    started = time.perf_counter()
    try:
        merged = read_merged_results(args.merge)
    except ValueError as exc:
        console.print(f"[red]{exc}[/]")
        return 2
    entries, warnings = merge_entries([resolve_dataset(requested) for requested in args.datasets], merged)
    shown, other_settings = shown_merged_cells(entries, merged, args)
    for entry in entries:
        if entry.unavailable:
            console.print(f"[yellow]{entry.requested}: not available[/] ({entry.unavailable})")
            continue
        p = entry.provenance
        console.print(
            f"{entry.key}: {entry.dataset_id} ({p['total_episodes']} episodes, {p['total_steps']:,} steps, "
            f"env {p['env_id']}, data score {fmt(p['data_score'])})"
            + (", measured elsewhere: its cells come from --merge" if entry.measured_elsewhere else "")
        )
    cells, not_runnable = cells_to_run(
        make_cells(entries, args.methods, args.seeds, args.workdir, args.only_seeds), shown
    )
    for warning in warnings + other_settings + not_runnable:
        console.print(f"[yellow]{warning}[/]")

    def describe(row: dict[str, Any]) -> str:
        return f"score {row['score']:.1f}"

    def every_cell(rows: list[Row]) -> list[Row]:
        return grid_rows(entries, args.methods, list(range(args.seeds)), rows, shown, args.only_seeds)

    def after_each(rows: list[Row]) -> None:  # the report is current after every cell
        write_results(args, entries, every_cell(rows), merged, time.perf_counter() - started)

    if args.ray and not args.report_only:
        options = RayOptions(args.ray_address, args.cpus_per_cell, args.cells_per_gpu, args.retries)
        by_name = {(c.entry.key, c.method, c.seed): c for c in cells}
        rows, failures = run_cells_on_ray(
            cells,
            run_requested_cell,
            lambda cell: (cell.entry.requested, cell.method, cell.seed, args),
            describe,
            after_each,
            console,
            options,
            waits_for=lambda c: by_name.get((c.entry.key, TRAINED_WITH.get(c.method), c.seed)),
        )
    else:
        rows, failures = run_cells(cells, lambda cell: run_locomotion_cell(cell, args), describe, after_each, console)
    wall_s = time.perf_counter() - started
    print_summary(args, entries, write_results(args, entries, every_cell(rows), merged, wall_s))
    console.print(
        f"wrote {args.out / 'locomotion.md'}, .csv and .json (.png once a cell has a score) in {wall_s / 60:.1f} min"
        + (f"; [red]{failures} cell(s) failed[/]" if failures else "")
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
