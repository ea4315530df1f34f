"""The machinery every benchmark script shares.

A benchmark is a grid of *cells*, one per dataset, method and seed. Each cell keeps its trained agent under the
work folder behind a settings check (a rerun with other training settings is refused, not mixed in), evaluates
it from the seed's own starting states (:func:`evaluation_seed`) through :func:`tt_agents.evaluation.evaluate`,
and writes ``result.json``, so a rerun skips finished cells. :func:`run_cells` runs the grid under one progress
bar and :func:`aggregate` turns the seeds of a dataset and method into mean ± standard error.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from gymnasium.envs.registration import EnvSpec
from rich.console import Console
from rich.progress import TextColumn

from tt_agents import AgentConfig, PlannerConfig, TTAgent
from tt_agents._io import make_progress, write_json_atomic
from tt_agents.baselines import IQLAgent
from tt_agents.data_making import summarize_dataset
from tt_agents.evaluation import evaluate, make_vec_env, reference_scores
from tt_agents.train import CHECKPOINT_NAME
from tt_agents.training_log import METRICS_FILE, plot_training_log

EVALUATION_SEED_OFFSET = 10_000
"""Evaluation seeds start here, away from the training seeds ``0, 1, ...``."""
PRESET_DEFAULTS = {"cpu": {"seeds": 2, "episodes": 10}, "paper": {"seeds": 5, "episodes": 3}}
"""Seeds (separately trained agents) per cell and evaluation episodes per seed of each preset."""

Agent = TypeVar("Agent")
Row = dict[str, Any]


def evaluation_seed(seed: int) -> int:
    """The seed of the evaluation environments of training seed ``seed``.

    Every method of a seed is evaluated from the same starting states; :func:`~tt_agents.evaluation.make_vec_env`
    draws each environment's seed from ``numpy.random.SeedSequence`` of this, so different seeds start elsewhere.
    """
    return EVALUATION_SEED_OFFSET + seed


# ---------------------------------------------------------------------------------------------- cells


@dataclass
class DatasetEntry:
    """One requested dataset: the id used (after any fallback), its row name, the loaded dataset and its
    evaluation environment, or why it is not available."""

    requested: str
    key: str
    """The row name in the tables (e.g. ``hopper-medium``) and the key of the paper's numbers."""
    dataset_id: str | None = None
    dataset: Any = None
    env_spec: EnvSpec | None = None
    unavailable: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    """What the dataset's metadata says about where it came from (written into the report)."""
    measured_elsewhere: bool = False
    """Not on this machine, but known from merged results (``--merge``): its cells come from there, none runs here."""

    @property
    def slug(self) -> str:
        """The entry's folder name under the work folder."""
        return (self.dataset_id or self.requested).replace("/", "__")


@dataclass
class Cell:
    """One dataset, method and seed: a trained agent and its evaluation, kept under ``dir``."""

    entry: DatasetEntry
    method: str
    seed: int
    workdir: Path

    def dir_of(self, method: str) -> Path:
        """The folder of ``method``'s cell for the same dataset and seed."""
        return self.workdir / self.entry.slug / method / f"seed{self.seed}"

    @property
    def dir(self) -> Path:
        return self.dir_of(self.method)

    @property
    def name(self) -> str:
        return f"{self.entry.key} / {self.method} / seed {self.seed}"

    @property
    def row(self) -> Row:
        """The fields that name the cell in every results row."""
        return {
            "dataset": self.entry.key,
            "dataset_id": self.entry.dataset_id,
            "method": self.method,
            "seed": self.seed,
        }


PROVENANCE_KEYS = frozenset(
    "dataset_id description algorithm_name author total_episodes total_steps data_mean_return data_score "
    "ref_min_score ref_max_score env_id env_kwargs".split()
)
"""What :func:`dataset_provenance` tells of a dataset."""


def dataset_provenance(dataset: Any, env_spec: EnvSpec) -> dict[str, Any]:
    """What a Minari dataset's metadata says about where it came from, its size, its own (behaviour) score and
    reference scores, and the environment it is evaluated in."""
    meta = dataset.storage.metadata
    summary = summarize_dataset(dataset)
    ref_min, ref_max = reference_scores(dataset) or (None, None)
    return {
        "dataset_id": dataset.spec.dataset_id,
        "description": meta.get("description"),
        "algorithm_name": meta.get("algorithm_name"),
        "author": sorted(author) if isinstance(author := meta.get("author"), set) else author,  # Minari: a set
        "total_episodes": summary.total_episodes,
        "total_steps": summary.total_steps,
        "data_mean_return": summary.mean_return,
        "data_score": summary.normalized_score,
        "ref_min_score": ref_min,
        "ref_max_score": ref_max,
        "env_id": env_spec.id,
        "env_kwargs": env_spec.kwargs,
    }


def make_cells(
    entries: list[DatasetEntry], methods: list[str], n_seeds: int, workdir: Path, only_seeds: list[int] | None = None
) -> list[Cell]:
    """The cells of the datasets on this machine, seed-major: an interrupted run already has every dataset and
    method for its first seeds. ``only_seeds`` keeps those of the ``n_seeds`` seeds."""
    return [
        Cell(entry, method, seed, workdir)
        for seed in range(n_seeds)
        if only_seeds is None or seed in only_seeds
        for entry in entries
        if not entry.unavailable and not entry.measured_elsewhere
        for method in methods
    ]


# ---------------------------------------------------------------------------------------------- settings


class SettingsMismatch(RuntimeError):
    """A cell folder holds an agent trained with other settings."""


def read_json(path: Path) -> Any:
    """The JSON value in ``path``; None when there is no such file."""
    return json.loads(path.read_text()) if path.is_file() else None


def planner_settings(planner: PlannerConfig) -> dict[str, Any]:
    """What of a planner's settings determines its plans: all but ``decoding`` (how the network is run)."""
    settings = asdict(planner)
    del settings["decoding"]
    return settings


def json_safe(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), so it compares equal to a saved copy."""
    return json.loads(json.dumps(value))


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two JSON-like values differ (``config.train.n_steps``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            path
            for key in sorted(set(old) | set(new))
            for path in changed_keys(old.get(key), new.get(key), f"{prefix}{key}.")
        ]
    return [prefix.rstrip(".")] if old != new else []


def with_new_fields(config: dict[str, Any]) -> dict[str, Any]:
    """The sections of a saved ``AgentConfig`` dict with the fields added since it was written, at their defaults
    (as a checkpoint of that time loads); a config that no longer parses is returned as it is."""
    try:
        full = AgentConfig.from_dict(config).to_dict()
    except (TypeError, ValueError):
        return config
    return {section: full[section] for section in config}


def _filled(settings: Any) -> Any:
    """``settings`` with every ``config`` and evaluation ``planner`` in it (at any depth, e.g. a reused cell's)
    given the fields added since, at their defaults."""
    if not isinstance(settings, dict):
        return settings
    filled = {key: _filled(value) for key, value in settings.items()}
    if isinstance(settings.get("config"), dict):
        filled["config"] = json_safe(with_new_fields(settings["config"]))
    if isinstance(settings.get("planner"), dict):
        filled["planner"] = json_safe({**planner_settings(PlannerConfig()), **settings["planner"]})
    return filled


def same_settings(recorded: Any, wanted: Any) -> bool:
    """Whether recorded settings (from JSON) are ``wanted``, fields added since the recording at their defaults."""
    return _filled(json_safe(recorded)) == _filled(json_safe(wanted))


def check_settings(directory: Path, settings: dict[str, Any]) -> None:
    """Record ``settings`` (what determines the trained agent) in ``directory/settings.json``; raise
    :class:`SettingsMismatch` naming the changed keys when the folder already records other ones."""
    settings = json_safe(settings)
    saved = read_json(directory / "settings.json")
    if saved is not None and not same_settings(saved, settings):
        raise SettingsMismatch(
            f"{directory} holds an agent trained with other settings (changed: "
            f"{', '.join(changed_keys(saved, settings))}); use another --workdir or delete that folder"
        )
    write_json_atomic(directory / "settings.json", settings)


def with_train_steps(config: AgentConfig, n_steps: int) -> AgentConfig:
    """``config`` training for exactly ``n_steps`` steps (no ``min_epochs`` floor), its warm-up cut to a tenth of
    them where it is longer."""
    warmup = min(config.train.warmup_steps, max(1, n_steps // 10))
    return replace(config, train=replace(config.train, n_steps=n_steps, min_epochs=None, warmup_steps=warmup))


# ---------------------------------------------------------------------------------------------- training


def train_or_load(
    cell_dir: Path,
    agent_path: Path,
    fit: Callable[[], tuple[Agent, dict[str, Any]]],
    load: Callable[[Path], Agent],
    save: Callable[[Agent, Path], None],
) -> tuple[Agent, dict[str, Any]]:
    """A cell's agent, loaded from ``agent_path`` when its training finished before, else ``fit()`` (the agent
    and details of its training), saved there; with its training record (``cell_dir/train.json``: ``train_s``
    and the details). The caller has checked the cell's settings (:func:`check_settings`)."""
    record = read_json(cell_dir / "train.json")
    if record is not None and agent_path.exists():
        return load(agent_path), record
    start = time.perf_counter()
    agent, details = fit()
    record = {"train_s": time.perf_counter() - start, **details}
    save(agent, agent_path)
    write_json_atomic(cell_dir / "train.json", record)
    return agent, record


def train_or_load_tt(cell: Cell, config: AgentConfig, device: str) -> tuple[TTAgent, dict[str, Any]]:
    """The cell's Trajectory Transformer (``cell.dir/agent``): trained with ``config`` on the cell's dataset and
    seed, resuming from the checkpoint in ``cell.dir/train`` when an earlier run was interrupted; its training
    metrics go to ``cell.dir/logs`` and their curves to ``cell.dir/training_curves.png``."""
    dataset, train_dir = cell.entry.dataset, cell.dir / "train"

    def fit() -> tuple[TTAgent, dict[str, Any]]:
        resumed = (train_dir / CHECKPOINT_NAME).is_file()
        agent = TTAgent(dataset.observation_space, dataset.action_space, config=config, device=device)
        agent.fit(dataset, checkpoint_dir=train_dir, log_dir=cell.dir / "logs", seed=cell.seed)
        plot_training_log(cell.dir / "logs" / METRICS_FILE, cell.dir / "training_curves.png")
        details: dict[str, Any] = {"resumed": resumed, "n_steps": config.train.n_steps}
        if agent.history is not None and agent.history.val_loss:
            details["final_val_loss"] = agent.history.val_loss[-1][1]
        return agent, details

    return train_or_load(
        cell.dir,
        cell.dir / "agent",
        fit,
        lambda path: TTAgent.from_pretrained(path, device=device),
        lambda agent, path: agent.save_pretrained(path),
    )


def train_or_load_baseline(
    cell: Cell, agent_class: type[Agent], n_steps: int, device: str, **agent_kwargs: Any
) -> tuple[Agent, dict[str, Any]]:
    """The cell's baseline (``cell.dir/agent``, or the single-file ``agent.pt`` an earlier version saved):
    ``agent_class(spaces, **agent_kwargs)`` trained for ``n_steps`` steps with the cell's seed. IQL (the long
    runs) resumes from its checkpoint folder ``cell.dir/iql_run`` (``iql_run.pt`` in work folders of earlier
    versions, resumed and rewritten as such a folder); the others retrain from scratch when
    interrupted."""
    dataset, legacy = cell.entry.dataset, cell.dir / "agent.pt"
    iql_run = cell.dir / ("iql_run.pt" if (cell.dir / "iql_run.pt").exists() else "iql_run")
    agent_path = legacy if legacy.is_file() and (cell.dir / "train.json").is_file() else cell.dir / "agent"

    def fit() -> tuple[Any, dict[str, Any]]:
        spaces = dataset.observation_space, dataset.action_space
        agent = agent_class(*spaces, seed=cell.seed, device=device, **agent_kwargs)
        if isinstance(agent, IQLAgent):  # resumable: IQL runs are the long ones
            agent.fit(dataset, n_steps, seed=cell.seed, checkpoint=iql_run)
        else:
            agent.fit(dataset, n_steps, seed=cell.seed)
        return agent, {"resumed": False, "n_steps": n_steps}

    return train_or_load(
        cell.dir,
        agent_path,
        fit,
        lambda path: agent_class.from_pretrained(path, device=device),
        lambda agent, path: agent.save_pretrained(path),
    )


# ---------------------------------------------------------------------------------------------- evaluation


def evaluate_cell(cell: Cell, agent: Any, n_episodes: int, n_envs: int, max_episode_steps: int | None) -> Row:
    """Evaluate ``agent`` (a TT agent or any SB3-style policy) on ``n_episodes`` episodes of the cell's evaluation
    environment, ``n_envs`` at a time, from the starts of :func:`evaluation_seed`; TT plans with the cell's seed
    and the real rewards in its context.

    Returns per-episode ``returns``, ``lengths``, ``successes`` (None where the environment reports none) and
    ``normalized`` returns (the dataset's reference scores; None without them or when ``max_episode_steps``
    cuts the episodes short), ``ms_per_action`` and the evaluation's wall time ``eval_s``.
    """
    make_kwargs = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    venv = make_vec_env(cell.entry.env_spec, min(n_envs, n_episodes), seed=evaluation_seed(cell.seed), **make_kwargs)
    start = time.perf_counter()
    try:
        result = evaluate(
            agent, venv, n_episodes=n_episodes, seed=cell.seed, use_rewards=True, reference=cell.entry.dataset
        )
    finally:
        venv.close()
    return {
        "returns": result.returns,
        "lengths": result.lengths,
        "successes": result.successes,
        "normalized": None if max_episode_steps else result.normalized_returns,
        "ms_per_action": result.ms_per_action,
        "eval_s": time.perf_counter() - start,
    }


def run_cell(
    cell: Cell,
    settings: dict[str, Any],
    eval_settings: dict[str, Any],
    trained_agent: Callable[[], tuple[Any, dict[str, Any]]],
    evaluate_agent: Callable[[Any], Row],
    train: bool = True,
) -> Row:
    """The cell's row: its ``result.json`` when it was evaluated before with ``eval_settings`` by an agent trained
    with ``settings`` (status ``cached``); else ``evaluate_agent(agent)`` of the agent and training record that
    ``trained_agent()`` gives, written to ``result.json`` (status ``done``), or, when not ``train``, only its name
    fields (status ``not run``)."""
    eval_settings = json_safe(eval_settings)
    cached = read_json(cell.dir / "result.json")
    if cached is not None and same_settings(cached.get("eval_settings"), eval_settings):
        if same_settings(read_json(cell.dir / "settings.json"), settings):
            return {**cell.row, **cached, "status": "cached"}
    if not train:
        return {**cell.row, "status": "not run"}
    agent, record = trained_agent()
    result = {"eval_settings": eval_settings, "settings": json_safe(settings), **evaluate_agent(agent), "train": record}
    write_json_atomic(cell.dir / "result.json", result)
    return {**cell.row, **result, "status": "done"}


def nested_live_supported() -> bool:
    """Whether rich can show the trainers' progress bars inside the cells' progress bar (rich >= 14)."""
    from rich.errors import LiveError
    from rich.live import Live

    console = Console(file=io.StringIO(), force_terminal=True)
    try:
        with Live(console=console), Live(console=console):
            return True
    except LiveError:
        return False


def run_cells(
    cells: list[Cell],
    run: Callable[[Cell], Row],
    describe: Callable[[Row], str],
    after_each: Callable[[list[Row]], None],
    console: Console,
) -> tuple[list[Row], int]:
    """Run every cell under one progress bar; a failing cell is reported and the others still run.
    ``describe`` gives a finished row's one-line summary; ``after_each`` sees the rows so far.

    Returns the rows (a failed cell's row has only its name fields and ``status``) and the number of failures.
    """
    rows: list[Row] = []
    failures = 0
    progress = make_progress(TextColumn("{task.fields[cell]}"), show=nested_live_supported(), console=console)
    with progress:
        task = progress.add_task("cells", total=len(cells), cell="")
        for cell in cells:
            progress.update(task, cell=cell.name)
            if progress.disable:
                console.rule(cell.name)
            try:
                row = run(cell)
                shown = "not run" if row["status"] == "not run" else f"{describe(row)} ({row['status']})"
                console.print(f"{cell.name}: {shown}")
            except Exception as exc:  # one broken cell is reported and the others still run
                failures += 1
                console.print(f"[red]{cell.name} failed:[/] {type(exc).__name__}: {exc}")
                if not isinstance(exc, SettingsMismatch):
                    console.print(traceback.format_exc(), markup=False, highlight=False)
                row = {**cell.row, "status": f"failed: {type(exc).__name__}"}
            rows.append(row)
            progress.advance(task)
            after_each(rows)
    return rows, failures


# ---------------------------------------------------------------------------------------------- merging

RESULTS_FORMAT = 1
"""The version of the results JSON a benchmark writes beside its report (``locomotion.json``)."""
ROW_FIELDS = {
    "dataset": (str, "a string"),
    "dataset_id": (str, "a string"),
    "method": (str, "a string"),
    "seed": (int, "an integer"),
    "score": ((int, float), "a number"),
    "score_kind": (str, "a string"),
    "returns": (list, "a list"),
    "lengths": (list, "a list"),
    "train": (dict, "an object"),
    "eval_s": ((int, float), "a number"),
}
"""The fields (and their JSON types) every scored row of a results JSON has: what a report is written from."""


@dataclass
class MergedResults:
    """Results of other runs (their results JSON files) that a report includes."""

    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Dataset key -> ``requested``, ``dataset_id`` and ``provenance`` of the data its cells were measured on."""
    rows: dict[tuple[str, str, int], Row] = field(default_factory=dict)
    """(dataset key, method, seed) -> the cell's row."""


def results_record(entries: list[DatasetEntry], rows: list[Row], merged: MergedResults) -> dict[str, Any]:
    """What a benchmark's results JSON holds: every merged dataset and cell, with this run's scored cells (and
    their datasets' provenance) over them, so that another machine, or a later run from a fresh checkout, merges
    them (:func:`read_merged_results`) and a run that shows part of a grid keeps the rest."""
    datasets, cells = dict(merged.datasets), dict(merged.rows)
    scored = [row for row in rows if row.get("score") is not None]
    measured = {row["dataset"] for row in scored}
    for e in entries:
        if e.key in measured and not e.measured_elsewhere:  # a dataset of another recording is measured elsewhere
            datasets[e.key] = {"requested": e.requested, "dataset_id": e.dataset_id, "provenance": e.provenance}
    cells |= {(row["dataset"], row["method"], row["seed"]): row for row in scored}
    return json_safe({"format": RESULTS_FORMAT, "datasets": datasets, "rows": list(cells.values())})


def _check_record(path: Path, record: Any) -> None:
    """A ValueError naming what of a results JSON is not as :func:`results_record` writes it."""
    if not isinstance(record, dict) or record.get("format") != RESULTS_FORMAT:
        raise ValueError(f"--merge {path}: not a results file of format {RESULTS_FORMAT} (a benchmark's .json)")
    datasets, rows = record.get("datasets"), record.get("rows")
    if not isinstance(datasets, dict) or not isinstance(rows, list):
        raise ValueError(f"--merge {path}: 'datasets' must be an object and 'rows' a list")
    for key, dataset in datasets.items():
        _check_dataset(path, key, dataset)
    for i, row in enumerate(rows):
        _check_row(path, i, row)
        if row["dataset"] not in datasets:
            raise ValueError(f"--merge {path}: row {i}: dataset {row['dataset']!r} has no provenance in the file")


def _check_dataset(path: Path, key: str, dataset: Any) -> None:
    provenance = dataset.get("provenance") if isinstance(dataset, dict) else None
    if not isinstance(provenance, dict):
        raise ValueError(f"--merge {path}: dataset {key!r} has no provenance object")
    missing = sorted(PROVENANCE_KEYS - set(provenance))
    if missing:
        raise ValueError(f"--merge {path}: {key}'s provenance lacks {', '.join(missing)}")
    if not isinstance(provenance["data_mean_return"], int | float):
        raise ValueError(f"--merge {path}: {key}'s data_mean_return is not a number")


def _check_row(path: Path, i: int, row: Any) -> None:
    if not isinstance(row, dict):
        raise ValueError(f"--merge {path}: row {i} is not an object")
    for name, (kind, text) in ROW_FIELDS.items():
        value = row.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"--merge {path}: row {i} ({row.get('dataset')}): {name!r} is missing or not {text}")


def read_merged_results(paths: list[Path]) -> MergedResults:
    """The datasets and scored cells of results JSON files (read as JSON, never unpickled). A later file's cell
    replaces an earlier one's; a later file that measured a dataset on another recording replaces that dataset
    with all its cells. A file that is not such a record is refused with its name and what is wrong."""
    merged = MergedResults()
    for path in paths:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"--merge {path}: not a readable results JSON ({exc})") from exc
        _check_record(path, record)
        for key, dataset in record["datasets"].items():
            known = merged.datasets.get(key)
            if known is not None and not same_data(known["provenance"], dataset["provenance"]):
                merged.rows = {cell: row for cell, row in merged.rows.items() if cell[0] != key}
            merged.datasets[key] = dataset
        merged.rows |= {(row["dataset"], row["method"], row["seed"]): row for row in record["rows"]}
    return merged


def same_data(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two provenances describe the same recording: same id, environment, episodes and steps, and the same
    mean return to the report's precision (one decimal). Another CPU records other episodes of the same level."""
    fields = ("dataset_id", "env_id", "total_episodes", "total_steps")
    return all(a.get(f) == b.get(f) for f in fields) and round(a["data_mean_return"], 1) == round(
        b["data_mean_return"], 1
    )


def _recording(p: dict[str, Any]) -> str:
    return f"{p['dataset_id']}: {p['total_episodes']} episodes, {p['total_steps']:,} steps, mean return " + (
        f"{p['data_mean_return']:.1f}"
    )


def merge_entries(entries: list[DatasetEntry], merged: MergedResults) -> tuple[list[DatasetEntry], list[str]]:
    """The entries as the report shows them, and a warning for each that this machine recorded otherwise.

    A dataset the merged results measured is shown with their provenance and cells, and none of its cells runs
    here, unless this machine holds the same recording: then its cells run here too, filling what the merged
    results lack. Another CPU records other episodes of the same level, and cells of two recordings never mix."""
    shown, warnings = [], []
    for entry in entries:
        known = merged.datasets.get(entry.key)
        recorded_here = entry.dataset is not None
        if known is not None and not (recorded_here and same_data(entry.provenance, known["provenance"])):
            if recorded_here:
                warnings.append(
                    f"{entry.key}: this machine's recording ({_recording(entry.provenance)}) is not the merged one "
                    f"({_recording(known['provenance'])}): the merged cells are shown and none runs here"
                )
            entry = replace(
                entry,
                dataset=None,
                dataset_id=known["dataset_id"],
                provenance=known["provenance"],
                unavailable=None,
                measured_elsewhere=True,
            )
        shown.append(entry)
    return shown, warnings


def grid_rows(
    entries: list[DatasetEntry],
    methods: list[str],
    seeds: list[int],
    rows: list[Row],
    merged: MergedResults,
    not_run_seeds: list[int] | None = None,
) -> list[Row]:
    """Every cell's row in grid order (seed-major): this run's, else the merged one (status ``merged``), else,
    for the seeds of ``not_run_seeds`` (all when None), a ``not run`` row."""
    here = {(r["dataset"], r["method"], r["seed"]): r for r in rows}
    grid = []
    for seed in seeds:
        for entry in (e for e in entries if not e.unavailable):
            for method in methods:
                key = (entry.key, method, seed)
                if key in here:
                    grid.append(here[key])
                elif key in merged.rows:
                    grid.append({**merged.rows[key], "status": "merged"})
                elif not_run_seeds is None or seed in not_run_seeds:
                    name = {"dataset": entry.key, "dataset_id": entry.dataset_id, "method": method, "seed": seed}
                    grid.append({**name, "status": "not run"})
    return grid


# ---------------------------------------------------------------------------------------------- summaries


def mean_se(values: list[float]) -> tuple[float, float | None]:
    """Mean and standard error (sample std / sqrt(n)); no s.e. for a single value."""
    array = np.asarray(values, dtype=np.float64)
    se = float(array.std(ddof=1) / math.sqrt(len(array))) if len(array) > 1 else None
    return float(array.mean()), se


@dataclass(frozen=True)
class SeedSummary:
    """One metric of one dataset and method over its seeds: mean ± standard error, and the rows behind it."""

    mean: float
    se: float | None
    values: list[float]
    """The metric of each seed, in seed order."""
    rows: list[Row]

    @property
    def n(self) -> int:
        return len(self.values)


Summaries = dict[tuple[str, str], SeedSummary]
"""(dataset key, method) -> its summary over seeds."""


def aggregate(rows: list[Row], metric: str) -> Summaries:
    """(dataset key, method) -> the summary over seeds of ``metric``, from the rows that have it."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        if row.get(metric) is not None:
            groups.setdefault((row["dataset"], row["method"]), []).append(row)
    summaries = {}
    for key, group in groups.items():
        group = sorted(group, key=lambda r: r["seed"])
        values = [float(r[metric]) for r in group]
        summaries[key] = SeedSummary(*mean_se(values), values=values, rows=group)
    return summaries


# ---------------------------------------------------------------------------------------------- command line


def parse_benchmark_args(
    argv: list[str] | None,
    description: str,
    methods: tuple[str, ...],
    datasets: dict[str, tuple[str, ...]],
    workdir: str,
    mergeable: bool = False,
) -> argparse.Namespace:
    """The command line every cell benchmark takes, parsed: the preset's seeds, episodes and ``datasets`` where not
    given, ``methods`` in table order, counts checked; ``--merge`` where the benchmark writes a results JSON
    (``mergeable``)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=tuple(PRESET_DEFAULTS), default="cpu")
    parser.add_argument("--datasets", nargs="+", help="Minari ids (default: the preset's)")
    parser.add_argument("--methods", nargs="+", choices=methods, default=list(methods))
    defaults = {name: ", ".join(f"{p} {d[name]}" for p, d in PRESET_DEFAULTS.items()) for name in ("seeds", "episodes")}
    parser.add_argument("--seeds", type=int, help=f"seeds (trained agents) per cell ({defaults['seeds']})")
    parser.add_argument("--episodes", type=int, help=f"evaluation episodes per seed ({defaults['episodes']})")
    parser.add_argument(
        "--only-seeds",
        type=int,
        nargs="+",
        help="run only these of the seeds 0 .. SEEDS-1 (to share a grid between processes on one work folder; "
        "a last run without it writes the whole table from the finished cells)",
    )
    parser.add_argument("--n-envs", type=int, default=5, help="environments evaluated (and planned) together")
    parser.add_argument("--workdir", type=Path, default=Path(workdir), help="trained agents and per-cell results")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="the report files")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, ...")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="write the report from the cells evaluated so far; train and evaluate nothing (the others are listed "
        "as not run)",
    )
    if mergeable:
        parser.add_argument(
            "--merge",
            type=Path,
            nargs="+",
            default=[],
            metavar="JSON",
            help="include the cells of earlier results files (this benchmark's .json from another machine or "
            "checkout): they are shown and not run here; a dataset this machine lacks, or recorded otherwise (another "
            "CPU records other episodes), is shown as those files measured it and none of its cells runs here",
        )
    grid = parser.add_argument_group("the cells as Ray tasks (pip install 'tt-agents[ray]'; default: one by one)")
    grid.add_argument("--ray", action="store_true", help="run the cells on a local Ray, one per core")
    grid.add_argument(
        "--ray-address",
        help="run them on an existing Ray cluster (e.g. ray://head:10001 or auto): every node must see the repository "
        "and --workdir at the same paths",
    )
    grid.add_argument("--cpus-per-cell", type=float, default=1.0, help="cores (torch threads) each cell holds")
    grid.add_argument("--cells-per-gpu", type=int, default=4, help="cells sharing one GPU where the cluster has GPUs")
    grid.add_argument(
        "--retries",
        type=int,
        default=2,
        help="times a crashed cell is run again (it resumes; an error of its input is not retried)",
    )
    smoke = parser.add_argument_group("tiny-budget overrides (smoke runs; the results file says they were used)")
    smoke.add_argument("--tt-steps", type=int, help="TT gradient steps instead of the preset's")
    smoke.add_argument("--baseline-steps", type=int, help="baseline gradient steps instead of the preset's")
    smoke.add_argument("--max-episode-steps", type=int, help="cut evaluation episodes at this many steps")
    args = parser.parse_args(argv)
    for name, value in PRESET_DEFAULTS[args.preset].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.datasets = args.datasets or list(datasets[args.preset])
    args.methods = [m for m in methods if m in args.methods]
    outside = sorted(set(args.only_seeds or ()) - set(range(args.seeds)))
    if outside:
        parser.error(f"--only-seeds {outside} outside the {args.seeds} seeds 0 .. {args.seeds - 1}")
    args.ray = args.ray or args.ray_address is not None
    if args.ray:  # tasks may run in other working directories: they get absolute folders
        args.workdir, args.out = args.workdir.resolve(), args.out.resolve()
    if not args.cpus_per_cell > 0 or args.cells_per_gpu < 1 or args.retries < 0:
        parser.error("--cpus-per-cell must be > 0, --cells-per-gpu >= 1 and --retries >= 0")
    for name in ("seeds", "episodes", "n_envs", "tt_steps", "baseline_steps", "max_episode_steps"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    return args
