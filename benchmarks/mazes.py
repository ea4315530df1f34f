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
concatenated in key order). A seed's *success rate* is the share of its episodes in which the environment
reported ``info["success"]``; its *normalized score* is ``100 * (return - ref_min) / (ref_max - ref_min)`` with
the dataset's reference scores. The tables give mean ± standard error over seeds.

Presets (``--preset``)
    ``cpu``: PointMaze Medium and Large datasets made locally in the paper's AntMaze setting: one fixed goal
    per maze, rewards relabelled for it, evaluation from random starts until the goal is reached
    (``tt-agents/pointmaze/MAZE-fixed-goal-v0``, :func:`make_point_maze_dataset` with ``goal="fixed"``; made on
    first use, about a minute each), :func:`tt_agents.cpu_preset` for TT (2 layers x 64, batch 64) trained for
    :data:`CPU_TT_STEPS` steps, beam 32 / horizon 5; IQL and BC :data:`CPU_BASELINE_STEPS` steps; 2 seeds x 10
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
import csv
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    SettingsMismatch,
    changed_keys,
    command_line,
    fmt,
    machine,
    mean_se,
    read_json,
    run_cells,
    write_json,
)
from gymnasium.envs.registration import EnvSpec
from minari.storage import get_dataset_path
from rich import get_console
from rich.table import Table

from tt_agents import AgentConfig, DatasetNotAvailableError, TTAgent, cpu_preset, evaluate, paper_preset
from tt_agents.baselines import BCAgent, IQLAgent, IQLConfig
from tt_agents.data_loading import load_minari_dataset
from tt_agents.envs.point_maze import GOALS, MAZES, make_point_maze_dataset, point_maze_dataset_id
from tt_agents.evaluation import make_vec_env

METHODS = ("tt", "tt-q", "iql", "bc")
LABELS = {"tt": "TT (reward)", "tt-q": "TT+Q (IQL)", "iql": "IQL", "bc": "BC"}
CPU_DATASETS = tuple(point_maze_dataset_id(maze, goal="fixed") for maze in ("medium", "large"))
PAPER_DATASETS = (
    "D4RL/antmaze/umaze-v1",
    "D4RL/antmaze/medium-play-v1",
    "D4RL/antmaze/medium-diverse-v1",
    "D4RL/antmaze/large-play-v1",
    "D4RL/antmaze/large-diverse-v1",
)
CPU_TT_STEPS = 4_000
CPU_BASELINE_STEPS = {"iql": 30_000, "bc": 20_000}
PAPER_TT_STEPS = 200_000
PAPER_BASELINE_STEPS = 1_000_000
PRESET_DEFAULTS = {"cpu": {"seeds": 2, "episodes": 10}, "paper": {"seeds": 5, "episodes": 3}}
EVAL_SEED_OFFSET = 10_000

PAPER_TABLE2: dict[str, dict[str, float | tuple[float, float]]] = {
    # Janner, Li & Levine (2021), Table 2 (AntMaze v0, normalized score = success rate x 100); baselines quoted
    # there from Kostrikov et al. (2021); TT (+Q) is mean ± s.e. over 15 runs.
    "antmaze-umaze": {"bc": 54.6, "iql": 87.5, "tt-q": (100.0, 0.0)},
    "antmaze-medium-play": {"bc": 0.0, "iql": 71.2, "tt-q": (93.3, 6.4)},
    "antmaze-medium-diverse": {"bc": 0.0, "iql": 70.0, "tt-q": (100.0, 0.0)},
    "antmaze-large-play": {"bc": 0.0, "iql": 39.6, "tt-q": (66.7, 12.2)},
    "antmaze-large-diverse": {"bc": 0.0, "iql": 47.5, "tt-q": (60.0, 12.7)},
}
"""The paper's Table 2 for our methods (it also lists CQL and DT), keyed ``antmaze-LEVEL``."""


# ---------------------------------------------------------------------------------------------- datasets


@dataclass
class Dataset:
    """One requested dataset, loaded (made first when it is a local PointMaze id), or why it is not."""

    dataset_id: str
    key: str
    dataset: Any = None
    unavailable: str | None = None

    @property
    def slug(self) -> str:
        return self.dataset_id.replace("/", "__")

    @property
    def env_spec(self) -> Any:
        """The dataset's evaluation environment (its recording environment when it names none)."""
        saved = self.dataset.storage.metadata.get("eval_env_spec")
        return EnvSpec.from_json(saved) if saved else self.dataset.spec.env_spec


def dataset_key(dataset_id: str) -> str:
    """``tt-agents/pointmaze/medium-v0`` -> ``pointmaze-medium``, ``D4RL/antmaze/large-play-v1`` ->
    ``antmaze-large-play``."""
    parts = dataset_id.split("/")
    return f"{parts[-2]}-{parts[-1].rsplit('-v', 1)[0]}" if len(parts) >= 2 else dataset_id


def load_dataset(dataset_id: str) -> Dataset:
    entry = Dataset(dataset_id, dataset_key(dataset_id))
    local = {point_maze_dataset_id(maze, goal): (maze, goal) for maze in MAZES for goal in GOALS}
    if dataset_id in local and not get_dataset_path(dataset_id).exists():  # ours: made here, never downloaded
        maze, goal = local[dataset_id]
        entry.dataset = make_point_maze_dataset(maze, goal=goal)
        return entry
    try:
        entry.dataset = load_minari_dataset(dataset_id)
    except DatasetNotAvailableError as exc:
        entry.unavailable = str(exc).splitlines()[0]
    return entry


def reference_scores(dataset: Any) -> tuple[float, float] | None:
    meta = dataset.storage.metadata
    low, high = meta.get("ref_min_score"), meta.get("ref_max_score")
    return (float(low), float(high)) if low is not None and high is not None else None


# ---------------------------------------------------------------------------------------------- settings


def tt_config(args: argparse.Namespace, key: str) -> AgentConfig:
    config = cpu_preset() if args.preset == "cpu" else paper_preset(key)
    steps = args.tt_steps or (CPU_TT_STEPS if args.preset == "cpu" else PAPER_TT_STEPS)
    config.train = replace(config.train, n_steps=steps, warmup_steps=min(config.train.warmup_steps, steps // 10 + 1))
    if args.preset == "cpu":  # attention dropout triples a CPU training step (see ModelConfig.attention_dropout)
        config.model = replace(config.model, attention_dropout=0.0)
    config.planner = replace(config.planner, mode="reward")
    return config


def tt_settings_text(args: argparse.Namespace) -> str:
    config = tt_config(args, "pointmaze")
    m, t, p = config.model, config.train, config.planner
    return (
        f"{m.n_layer} layers x {m.n_embd} dims, {m.sequence_length} transitions, attention dropout "
        f"{m.attention_dropout if m.attention_dropout is not None else m.dropout}, {config.tokenizer.n_bins} "
        f"{config.tokenizer.strategy} bins; {t.n_steps:,} steps at batch {t.batch_size}; beam {p.beam_width}, "
        f"n_expand {p.n_expand}, horizon {p.horizon}, {p.max_context_transitions} context transitions"
    )


def baseline_steps(args: argparse.Namespace, method: str) -> int:
    return args.baseline_steps or (CPU_BASELINE_STEPS[method] if args.preset == "cpu" else PAPER_BASELINE_STEPS)


@dataclass
class Cell:
    entry: Dataset
    method: str
    seed: int
    workdir: Path

    def dir_of(self, method: str) -> Path:
        return self.workdir / self.entry.slug / method / f"seed{self.seed}"

    @property
    def dir(self) -> Path:
        return self.dir_of(self.method)

    @property
    def name(self) -> str:
        return f"{self.entry.key} / {self.method} / seed {self.seed}"


def train_settings(cell: Cell, args: argparse.Namespace) -> dict[str, Any]:
    """What determines the trained agent (the ``tt-q`` cell trains nothing: it reuses ``tt`` and ``iql``)."""
    settings: dict[str, Any] = {"dataset_id": cell.entry.dataset_id, "method": cell.method, "seed": cell.seed}
    if cell.method == "tt":
        config = tt_config(args, cell.entry.key).to_dict()
        config.pop("planner")
        settings["config"] = config
    elif cell.method in ("iql", "bc"):
        settings["n_steps"] = baseline_steps(args, cell.method)
        if cell.method == "iql":
            settings["iql"] = IQLConfig.antmaze().to_dict()
    return json_safe(settings)


def eval_settings(cell: Cell, args: argparse.Namespace) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "episodes": args.episodes,
        "n_envs": min(args.n_envs, args.episodes),
        "max_episode_steps": args.max_episode_steps,
        "env_seed": EVAL_SEED_OFFSET + cell.seed,
    }
    if cell.method.startswith("tt"):
        planner = tt_config(args, cell.entry.key).planner
        settings["planner"] = asdict(replace(planner, mode="q" if cell.method == "tt-q" else "reward"))
    return json_safe(settings)


def json_safe(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value))


# ---------------------------------------------------------------------------------------------- cells


def _check_settings(directory: Path, settings: dict[str, Any]) -> None:
    saved = read_json(directory / "settings.json")
    if saved is not None and saved != settings:
        raise SettingsMismatch(
            f"{directory} holds an agent trained with other settings (changed: "
            f"{', '.join(changed_keys(saved, settings))}); use another --workdir or delete that folder"
        )
    write_json(directory / "settings.json", settings)


def train_or_load(cell: Cell, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The cell's agent (loaded when trained before) and its training record."""
    if cell.method == "tt-q":
        tt, tt_record = train_or_load(replace(cell, method="tt"), args)
        iql, iql_record = train_or_load(replace(cell, method="iql"), args)
        tt.q_function = iql.q_function()
        tt.configure_planner(mode="q")
        return tt, {"train_s": 0.0, "reuses": {"tt": tt_record, "iql": iql_record}}
    _check_settings(cell.dir, train_settings(cell, args))
    record = read_json(cell.dir / "train.json")
    dataset = cell.entry.dataset
    if cell.method == "tt":
        agent_dir = cell.dir / "agent"
        if record is not None and (agent_dir / "config.json").is_file():
            return TTAgent.from_pretrained(agent_dir, device=args.device), record
        config = tt_config(args, cell.entry.key)
        agent = TTAgent(dataset.observation_space, dataset.action_space, config=config, device=args.device)
        start = time.perf_counter()
        agent.fit(dataset, checkpoint_dir=cell.dir / "train", seed=cell.seed)
        record = {"train_s": time.perf_counter() - start, "n_steps": config.train.n_steps}
        agent.save_pretrained(agent_dir)
        write_json(cell.dir / "train.json", record)
        return agent, record
    path = cell.dir / "agent.pt"
    cls = IQLAgent if cell.method == "iql" else BCAgent
    if record is not None and path.is_file():
        return cls.load(path, device=args.device), record
    if cell.method == "iql":
        agent = IQLAgent(
            dataset.observation_space, dataset.action_space, IQLConfig.antmaze(), seed=cell.seed, device=args.device
        )
    else:
        agent = BCAgent(dataset.observation_space, dataset.action_space, seed=cell.seed, device=args.device)
    steps = baseline_steps(args, cell.method)
    start = time.perf_counter()
    if isinstance(agent, IQLAgent):  # resumable: IQL runs are the long ones
        agent.fit(dataset, steps, seed=cell.seed, checkpoint=cell.dir / "iql_run.pt")
    else:
        agent.fit(dataset, steps, seed=cell.seed)
    record = {"train_s": time.perf_counter() - start, "n_steps": steps}
    agent.save(path)
    write_json(cell.dir / "train.json", record)
    return agent, record


def run_cell(cell: Cell, args: argparse.Namespace) -> dict[str, Any]:
    """Train (or load) and evaluate one cell unless its result is already there; returns its row."""
    row = {"dataset": cell.entry.key, "dataset_id": cell.entry.dataset_id, "method": cell.method, "seed": cell.seed}
    settings = eval_settings(cell, args)
    cached = read_json(cell.dir / "result.json")
    if cached is not None and cached.get("eval_settings") == settings:
        return {**row, **cached, "status": "cached"}
    agent, record = train_or_load(cell, args)
    make_kwargs = {} if args.max_episode_steps is None else {"max_episode_steps": args.max_episode_steps}
    venv = make_vec_env(cell.entry.env_spec, settings["n_envs"], seed=settings["env_seed"], **make_kwargs)
    start = time.perf_counter()
    try:
        result = evaluate(agent, venv, n_episodes=args.episodes, seed=cell.seed, use_rewards=True)
    finally:
        venv.close()
    eval_s = time.perf_counter() - start
    refs = None if args.max_episode_steps else reference_scores(cell.entry.dataset)  # refs: full episodes
    normalized = None if refs is None else [100.0 * (r - refs[0]) / (refs[1] - refs[0]) for r in result.returns]
    out = {
        "eval_settings": settings,
        "returns": result.returns,
        "lengths": result.lengths,
        "successes": result.successes,
        "success_rate": None if result.success_rate is None else 100.0 * result.success_rate,
        "normalized": normalized,
        "normalized_score": None if normalized is None else float(np.mean(normalized)),
        "ms_per_action": result.ms_per_action,
        "eval_s": eval_s,
        "train": record,
    }
    write_json(cell.dir / "result.json", out)
    return {**row, **out, "status": "done"}


# ---------------------------------------------------------------------------------------------- results


def aggregate(rows: list[dict[str, Any]], metric: str) -> dict[tuple[str, str], tuple[float, float | None, int]]:
    """(dataset key, method) -> (mean, s.e., seeds) of ``metric`` over the finished cells."""
    groups: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        if row.get(metric) is not None:
            groups.setdefault((row["dataset"], row["method"]), []).append(row[metric])
    return {key: (*mean_se(values), len(values)) for key, values in groups.items()}


def paper_text(key: str, method: str) -> str:
    value = PAPER_TABLE2.get(key, {}).get(method)
    if value is None:
        return "—"
    return fmt(*value) if isinstance(value, tuple) else fmt(value)


def comparison_lines(
    entries: list[Dataset], success: dict[tuple[str, str], tuple[float, float | None, int]]
) -> list[str]:
    """The paper's claim checked on our success rates: does TT+Q beat reward-mode TT and match IQL?"""
    lines = []
    for entry in entries:
        rates = {m: success[(entry.key, m)][0] for m in ("tt", "tt-q", "iql") if (entry.key, m) in success}
        if len(rates) < 3:
            continue
        beats_tt = "yes" if rates["tt-q"] > rates["tt"] else "**no**"
        matches_iql = "yes" if rates["tt-q"] >= rates["iql"] else "**no**"
        lines.append(
            f"- {entry.key}: TT+Q beats TT (reward mode): {beats_tt} ({rates['tt-q']:.0f}% vs {rates['tt']:.0f}%); "
            f"TT+Q at least as good as IQL: {matches_iql} ({rates['tt-q']:.0f}% vs {rates['iql']:.0f}%)"
        )
    return ["## The paper's claim on our data", "", *lines, ""] if lines else []


def write_results(args: argparse.Namespace, entries: list[Dataset], rows: list[dict[str, Any]], wall_s: float) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    success, score = aggregate(rows, "success_rate"), aggregate(rows, "normalized_score")

    def cell_text(table: dict, key: str, method: str) -> str:
        if (key, method) not in table:
            return "—"
        mean, se, n = table[(key, method)]
        return fmt(mean, se) + (f" ({n} of {args.seeds} seeds so far)" if n < args.seeds else "")

    lines = [
        "# Sparse-reward mazes: TT, TT+Q (IQL), IQL and BC beside the paper (Table 2)",
        "",
        f"Preset **`{args.preset}`**. Command: `{command_line()}`",
        f"Machine: {machine()}. Wall time of this invocation: {wall_s / 60:.1f} min.",
        "",
        f"Mean ± standard error over seeds (each seed a separately trained agent evaluated on {args.episodes} "
        "episodes). TT+Q plans with the seed's TT model and the seed's IQL Q-function.",
        "",
    ]
    for title, table in (("Success rate (%)", success), ("Normalized score", score)):
        lines += [f"## {title}", "", "| dataset | " + " | ".join(LABELS[m] for m in args.methods) + " |"]
        lines.append("|" + "---|" * (len(args.methods) + 1))
        for entry in entries:
            texts = ["not available" if entry.unavailable else cell_text(table, entry.key, m) for m in args.methods]
            lines.append(f"| {entry.key} | " + " | ".join(texts) + " |")
        lines.append("")
    lines += comparison_lines(entries, success)
    lines += [
        "## Settings",
        "",
        f"- TT: {tt_settings_text(args)}",
        f"- IQL: {baseline_steps(args, 'iql'):,} steps, `IQLConfig.antmaze()` (expectile 0.9, temperature 10, "
        "rewards - 1), 2x256 networks, batch 256; BC: "
        f"{baseline_steps(args, 'bc'):,} steps, 2x256 MLP, batch 256",
        f"- Evaluation: {args.episodes} episodes per seed in the dataset's evaluation environment (see Datasets; "
        f"a new random start at every reset), {min(args.n_envs, args.episodes)} at a time; TT gets the real rewards "
        "in its context" + (f"; episodes cut at {args.max_episode_steps} steps" if args.max_episode_steps else ""),
        "",
        "## The paper's Table 2 (AntMaze v0, D4RL; not our data)",
        "",
        "| dataset | " + " | ".join(LABELS[m] for m in args.methods) + " |",
        "|" + "---|" * (len(args.methods) + 1),
    ]
    for key in PAPER_TABLE2:
        lines.append(f"| {key} | " + " | ".join(paper_text(key, m) for m in args.methods) + " |")
    lines += [
        "",
        "Paper: Janner et al. (2021) Table 2; its BC and IQL columns are quoted there from Kostrikov et al. (2021); "
        "it reports no reward-mode TT on AntMaze.",
        "",
        "## Datasets (provenance)",
        "",
    ]
    for entry in entries:
        if entry.unavailable:
            lines.append(f"- `{entry.dataset_id}`: **not available** ({entry.unavailable})")
            continue
        meta = entry.dataset.storage.metadata
        refs = reference_scores(entry.dataset)
        lines.append(
            f"- `{entry.dataset_id}`: {entry.dataset.total_episodes} episodes, {entry.dataset.total_steps:,} steps, "
            f"evaluation environment `{entry.env_spec.id}` {entry.env_spec.kwargs}"
            + (f", reference scores {refs[0]:.1f} / {refs[1]:.1f}" if refs else "")
            + f'. Description: "{meta.get("description")}"'
        )
    lines += [
        "",
        "## Cells",
        "",
        "| dataset | method | seed | success % | normalized | train (s) | ms/action | status |",
    ]
    lines.append("|---|---|---|---|---|---|---|---|")
    for row in rows:
        done = row.get("returns") is not None
        lines.append(
            f"| {row['dataset']} | {row['method']} | {row['seed']} | "
            + (
                f"{fmt(row['success_rate'])} | {fmt(row['normalized_score'])} | {row['train']['train_s']:.0f} | "
                f"{row['ms_per_action']:.0f} | {row['status']} |"
                if done
                else f"— | — | — | — | {row['status']} |"
            )
        )
    (args.out / "mazes.md").write_text("\n".join(lines) + "\n")
    with (args.out / "mazes.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["dataset", "dataset_id", "method", "seed", "status", "success_rate", "normalized_score"])
        for row in rows:
            writer.writerow(
                [row[k] for k in ("dataset", "dataset_id", "method", "seed", "status")]
                + [row.get("success_rate"), row.get("normalized_score")]
            )


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=("cpu", "paper"), default="cpu")
    parser.add_argument("--datasets", nargs="+", help="Minari ids (default: the preset's)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--seeds", type=int, help="seeds per cell (cpu 2, paper 5)")
    parser.add_argument("--episodes", type=int, help="evaluation episodes per seed (cpu 5, paper 3)")
    parser.add_argument("--n-envs", type=int, default=5, help="environments evaluated (and planned) together")
    parser.add_argument("--workdir", type=Path, default=Path("runs/mazes"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--device", default="auto")
    smoke = parser.add_argument_group("tiny-budget overrides (smoke runs)")
    smoke.add_argument("--tt-steps", type=int)
    smoke.add_argument("--baseline-steps", type=int)
    smoke.add_argument("--max-episode-steps", type=int)
    args = parser.parse_args(argv)
    for name, value in PRESET_DEFAULTS[args.preset].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.datasets = args.datasets or list(CPU_DATASETS if args.preset == "cpu" else PAPER_DATASETS)
    args.methods = [m for m in METHODS if m in args.methods]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = get_console()
    started = time.perf_counter()
    entries = [load_dataset(dataset_id) for dataset_id in args.datasets]
    for entry in entries:
        if entry.unavailable:
            console.print(f"[yellow]{entry.dataset_id}: not available[/] ({entry.unavailable})")
    cells = [  # seed-major: an interrupted run already has every maze and method for its first seeds
        Cell(entry, method, seed, args.workdir)
        for seed in range(args.seeds)
        for entry in entries
        if not entry.unavailable
        for method in args.methods
    ]
    rows, failures = run_cells(
        cells,
        lambda cell: run_cell(cell, args),
        lambda row: f"success {fmt(row['success_rate'])}%, normalized {fmt(row['normalized_score'])}",
        lambda rows: write_results(args, entries, rows, time.perf_counter() - started),
        console,
    )
    success = aggregate(rows, "success_rate")
    table = Table(title=f"Mazes, preset {args.preset}: success rate % (mean ± s.e. over seeds)")
    table.add_column("dataset")
    for method in args.methods:
        table.add_column(LABELS[method], justify="right")
    for entry in entries:
        table.add_row(
            entry.key, *(fmt(*success[(entry.key, m)][:2]) if (entry.key, m) in success else "—" for m in args.methods)
        )
    console.print(table)
    console.print(f"wrote {args.out / 'mazes.md'} and mazes.csv" + (f"; [red]{failures} failed[/]" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
