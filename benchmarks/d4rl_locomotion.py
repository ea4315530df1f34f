"""D4RL locomotion, the paper's Table 1 and Figure 5: TT (quantile and uniform), BC and IQL, ours beside theirs.

For every dataset (a Minari id: ``mujoco/hopper/medium-v0`` ... where those are available, or a dataset made
locally with ``tt-agents make-dataset hopper medium``) and every method and seed, one *cell* trains an agent on
the dataset and evaluates it in the dataset's environment; a seed's score is the mean normalized score
(``100 * (return - ref_min) / (ref_max - ref_min)``, the dataset's reference scores) over its episodes, and
the table gives the mean ± standard error over seeds.

Methods
    ``tt-quantile`` / ``tt-uniform``: the Trajectory Transformer with quantile / uniform discretization,
    reward-mode beam search (predicted rewards + reward-to-go), real rewards in the planning context.
    ``bc``: :class:`tt_agents.baselines.BCAgent`; ``iql``: :class:`tt_agents.baselines.IQLAgent`
    (both evaluated with SB3's ``evaluate_policy``, deterministic actions).

Presets (``--preset``)
    ``cpu``: fits a 2-core CPU; reduced settings, each named in the results file: ``cpu_preset()`` (2 layers x
    64 dims, batch 64) without attention dropout, trained for :data:`CPU_TT_STEPS` steps, beam 32, horizon 5;
    BC 50k and IQL 30k steps (:data:`CPU_BASELINE_STEPS`); 2 seeds x 10 episodes (about 2 h on one core). The
    results file states the measured wall time of every cell.
    ``paper``: for a GPU: ``paper_preset(name)`` (4 layers x 128, batch 256, beam 128 / horizon 15 with the
    authors' per-dataset overrides) trained for the authors' equivalent of 50 epochs of a 1M-transition
    dataset (80 for hopper and walker2d medium-replay); BC and IQL 1M steps; 5 seeds x 3 episodes (the
    paper: 5 trained Transformers x 3 trajectories).

Resumable per cell: every cell keeps its trained agent and ``result.json`` under ``--workdir``; a rerun skips
finished cells, loads trained agents that still need evaluating, and resumes TT and IQL training from their
last checkpoints (a BC cell, minutes long, retrains from scratch if interrupted).

Outputs in ``--out``: ``locomotion.md`` (table with the paper's numbers, dataset provenance, command, machine,
wall times), ``locomotion.csv`` (one row per dataset, method and seed) and ``locomotion.png`` (bar plot).

    tt-agents make-dataset hopper medium --cpu              # the cpu preset's data (once, ~45 min)
    python benchmarks/d4rl_locomotion.py                    # cpu preset on tt-agents/hopper/medium-v0
    python benchmarks/d4rl_locomotion.py --preset paper     # the 9 mujoco/* datasets, on a GPU
    python benchmarks/d4rl_locomotion.py --datasets smoke/invertedpendulum/medium-v0 --tt-steps 20 \\
        --baseline-steps 20 --seeds 1 --episodes 1 --max-episode-steps 20 --out /tmp/out --workdir /tmp/work
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    SettingsMismatch,
    changed_keys,
    command_line,
    fmt,
    fmt_paper,
    machine,
    mean_se,
    read_json,
    run_cells,
    write_json,
)
from rich import get_console
from rich.table import Table

from tt_agents import AgentConfig, DatasetNotAvailableError, TTAgent, cpu_preset, evaluate, paper_preset
from tt_agents.baselines import BCAgent, IQLAgent
from tt_agents.data_loading import load_minari_dataset
from tt_agents.data_making import LOCOMOTION_LEVELS, SHORT_ENV_NAMES, locomotion_dataset_id, summarize_dataset
from tt_agents.evaluation import make_vec_env

METHODS = ("tt-quantile", "tt-uniform", "bc", "iql")
LABELS = {"tt-quantile": "TT (quantile)", "tt-uniform": "TT (uniform)", "bc": "BC", "iql": "IQL"}
ENVS = ("halfcheetah", "hopper", "walker2d")
LEVELS = ("medium-expert", "medium", "medium-replay")
PAPER_DATASETS = tuple(f"mujoco/{env}/{level}-v0" for level in LEVELS for env in ENVS)
"""The 9 datasets of the paper's Table 1, as Farama's Minari ids."""
CPU_DATASETS = ("tt-agents/hopper/medium-v0",)

CPU_TT_STEPS = 4_000
"""TT gradient steps of the ``cpu`` preset: ~2.5 epochs of a 100k-transition dataset at ``cpu_preset()``'s batch
64 (the authors: 50 epochs of 1M transitions at batch 256, ~195k steps). On one thread of a 2-core CPU a hopper
step takes ~0.22 s without attention dropout (0.41 s with it), so a TT cell trains in ~15 minutes."""
CPU_BASELINE_STEPS = {"bc": 50_000, "iql": 30_000}
"""BC and IQL gradient steps of the ``cpu`` preset (paper: 1M each), batch 256."""
PAPER_BASELINE_STEPS = 1_000_000
AUTHORS_EPOCH_TRANSITIONS = 1_000_000
"""The authors train ``n_epochs_ref * 1M / len(dataset)`` epochs, i.e. a fixed number of window samples."""
AUTHORS_EPOCHS = {"hopper-medium-replay": 80, "walker2d-medium-replay": 80}
"""The authors' ``n_epochs_ref`` where it is not 50 (config/offline.py of jannerm/trajectory-transformer)."""
EVAL_SEED_OFFSET = 10_000
"""Evaluation environments of seed ``s`` are seeded with ``EVAL_SEED_OFFSET + s`` (training uses ``s``)."""

Number = tuple[float, float | None]
PAPER_TABLE1: dict[str, dict[str, Number]] = {
    # Janner, Li & Levine (2021), Table 1 (D4RL v2): TT is mean ± s.e. over 15 runs (5 models x 3 trajectories);
    # BC is taken there from Kumar et al. (2020a), CQL from Kostrikov et al. (2021).
    "halfcheetah-medium-expert": {
        "bc": (59.9, None),
        "mbop": (105.9, None),
        "brac": (41.9, None),
        "cql": (91.6, None),
        "dt": (86.8, None),
        "tt-uniform": (40.8, 2.3),
        "tt-quantile": (95.0, 0.2),
    },
    "hopper-medium-expert": {
        "bc": (79.6, None),
        "mbop": (55.1, None),
        "brac": (0.9, None),
        "cql": (105.4, None),
        "dt": (107.6, None),
        "tt-uniform": (106.0, 0.28),
        "tt-quantile": (110.0, 2.7),
    },
    "walker2d-medium-expert": {
        "bc": (36.6, None),
        "mbop": (70.2, None),
        "brac": (81.6, None),
        "cql": (108.8, None),
        "dt": (108.1, None),
        "tt-uniform": (91.0, 2.8),
        "tt-quantile": (101.9, 6.8),
    },
    "halfcheetah-medium": {
        "bc": (43.1, None),
        "mbop": (44.6, None),
        "brac": (46.3, None),
        "cql": (44.0, None),
        "dt": (42.6, None),
        "tt-uniform": (44.0, 0.31),
        "tt-quantile": (46.9, 0.4),
    },
    "hopper-medium": {
        "bc": (63.9, None),
        "mbop": (48.8, None),
        "brac": (31.3, None),
        "cql": (58.5, None),
        "dt": (67.6, None),
        "tt-uniform": (67.4, 2.9),
        "tt-quantile": (61.1, 3.6),
    },
    "walker2d-medium": {
        "bc": (77.3, None),
        "mbop": (41.0, None),
        "brac": (81.1, None),
        "cql": (72.5, None),
        "dt": (74.0, None),
        "tt-uniform": (81.3, 2.1),
        "tt-quantile": (79.0, 2.8),
    },
    "halfcheetah-medium-replay": {
        "bc": (4.3, None),
        "mbop": (42.3, None),
        "brac": (47.7, None),
        "cql": (45.5, None),
        "dt": (36.6, None),
        "tt-uniform": (44.1, 0.9),
        "tt-quantile": (41.9, 2.5),
    },
    "hopper-medium-replay": {
        "bc": (27.6, None),
        "mbop": (12.4, None),
        "brac": (0.6, None),
        "cql": (95.0, None),
        "dt": (82.7, None),
        "tt-uniform": (99.4, 3.2),
        "tt-quantile": (91.5, 3.6),
    },
    "walker2d-medium-replay": {
        "bc": (36.9, None),
        "mbop": (9.7, None),
        "brac": (0.9, None),
        "cql": (77.2, None),
        "dt": (66.6, None),
        "tt-uniform": (79.4, 3.3),
        "tt-quantile": (82.6, 6.9),
    },
}
"""The paper's Table 1 (normalized scores), keyed ``env-level``."""

IQL_KOSTRIKOV: dict[str, float] = {
    "halfcheetah-medium": 47.4,
    "hopper-medium": 66.3,
    "walker2d-medium": 78.3,
    "halfcheetah-medium-replay": 44.2,
    "hopper-medium-replay": 94.7,
    "walker2d-medium-replay": 73.9,
    "halfcheetah-medium-expert": 86.7,
    "hopper-medium-expert": 91.5,
    "walker2d-medium-expert": 109.6,
}
"""IQL on D4RL v2 locomotion from Kostrikov, Nair & Levine (2021), Table 1: the TT paper reports IQL only on
AntMaze (its Table 2), so these come from the IQL paper itself."""


def paper_numbers(key: str) -> dict[str, Number]:
    """The published numbers for our four methods on ``key`` (``env-level``); empty where none exist."""
    row = {m: PAPER_TABLE1[key][m] for m in ("tt-quantile", "tt-uniform", "bc")} if key in PAPER_TABLE1 else {}
    if key in IQL_KOSTRIKOV:
        row["iql"] = (IQL_KOSTRIKOV[key], None)
    return row


# ---------------------------------------------------------------------------------------------- datasets


@dataclass
class DatasetEntry:
    """One requested dataset: the id used (after fallbacks), its environment and provenance."""

    requested: str
    key: str
    """``env-level`` (e.g. ``hopper-medium``): the row name and the key of the paper's numbers."""
    dataset_id: str | None = None
    dataset: Any = None
    env_spec: Any = None
    unavailable: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return (self.dataset_id or self.requested).replace("/", "__")


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


def provenance(dataset: Any) -> dict[str, Any]:
    """What the dataset's Minari metadata says about where it came from, and its own (behaviour) score."""
    meta = dataset.storage.metadata
    summary = summarize_dataset(dataset)
    ref_min, ref_max = meta.get("ref_min_score"), meta.get("ref_max_score")
    has_refs = ref_min is not None and ref_max is not None and math.isfinite(ref_min) and math.isfinite(ref_max)
    return {
        "dataset_id": dataset.spec.dataset_id,
        "description": meta.get("description"),
        "algorithm_name": meta.get("algorithm_name"),
        "author": meta.get("author"),
        "total_episodes": summary.total_episodes,
        "total_steps": summary.total_steps,
        "data_mean_return": summary.mean_return,
        "data_score": summary.normalized_score,
        "ref_min_score": float(ref_min) if has_refs else None,
        "ref_max_score": float(ref_max) if has_refs else None,
        "env_id": dataset.spec.env_spec.id if dataset.spec.env_spec is not None else None,
    }


def resolve_dataset(requested: str) -> DatasetEntry:
    """Load ``requested`` (or its local fallback); an unavailable dataset is reported, not raised."""
    env, level = split_id(requested)
    entry = DatasetEntry(requested=requested, key=f"{env}-{level}")
    reasons = []
    for dataset_id in candidates(requested):
        try:
            dataset = load_minari_dataset(dataset_id)
        except DatasetNotAvailableError as exc:
            reason = str(exc).splitlines()[0].rstrip(".")
            if dataset_id.startswith("tt-agents/"):
                env_name, level_name = split_id(dataset_id)
                reason += f" (make it with: tt-agents make-dataset {env_name} {level_name} --cpu)"
            reasons.append(f"{dataset_id}: {reason}")
            continue
        entry.dataset_id, entry.dataset = dataset_id, dataset
        break
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
    entry.provenance = provenance(entry.dataset)
    return entry


# ---------------------------------------------------------------------------------------------- presets


def tt_config(preset: str, method: str, key: str, args: argparse.Namespace) -> AgentConfig:
    """The TT configuration of a cell: the preset, the cell's discretization, reward planning, step overrides."""
    if preset == "cpu":
        config = cpu_preset()
        steps = CPU_TT_STEPS
    else:
        config = paper_preset(key)
        epochs = AUTHORS_EPOCHS.get(key, 50)
        steps = math.ceil(AUTHORS_EPOCH_TRANSITIONS * epochs / config.train.batch_size)
    steps = args.tt_steps or steps
    if preset == "cpu":  # attention dropout triples a CPU training step (see ModelConfig.attention_dropout)
        config.model = replace(config.model, attention_dropout=0.0)
    config.tokenizer = replace(config.tokenizer, strategy=method.removeprefix("tt-"))
    config.train = replace(
        config.train, n_steps=steps, warmup_steps=min(config.train.warmup_steps, max(1, steps // 10))
    )
    config.planner = replace(config.planner, mode="reward")
    return config


def baseline_steps(preset: str, method: str, args: argparse.Namespace) -> int:
    return args.baseline_steps or (CPU_BASELINE_STEPS[method] if preset == "cpu" else PAPER_BASELINE_STEPS)


PRESET_DEFAULTS = {"cpu": {"seeds": 2, "episodes": 10}, "paper": {"seeds": 5, "episodes": 3}}


# ---------------------------------------------------------------------------------------------- cells


@dataclass
class Cell:
    entry: DatasetEntry
    method: str
    seed: int
    workdir: Path

    @property
    def dir(self) -> Path:
        return self.workdir / self.entry.slug / self.method / f"seed{self.seed}"

    @property
    def name(self) -> str:
        return f"{self.entry.key} / {self.method} / seed {self.seed}"


def train_settings(cell: Cell, args: argparse.Namespace) -> dict[str, Any]:
    """What determines the trained agent (a change means retraining: the cell refuses to mix them)."""
    settings: dict[str, Any] = {"dataset_id": cell.entry.dataset_id, "method": cell.method, "seed": cell.seed}
    if cell.method.startswith("tt-"):
        config = tt_config(args.preset, cell.method, cell.entry.key, args).to_dict()
        config.pop("planner")
        settings["config"] = config
    else:
        settings["n_steps"] = baseline_steps(args.preset, cell.method, args)
    return json.loads(json.dumps(settings))  # tuples -> lists, as read back from JSON


def eval_settings(cell: Cell, args: argparse.Namespace) -> dict[str, Any]:
    """What determines the evaluation (a change means re-evaluating the trained agent)."""
    settings: dict[str, Any] = {
        "episodes": args.episodes,
        "n_envs": min(args.n_envs, args.episodes),
        "max_episode_steps": args.max_episode_steps,
        "env_seed": EVAL_SEED_OFFSET + cell.seed,
    }
    if cell.method.startswith("tt-"):
        settings["planner"] = asdict(tt_config(args.preset, cell.method, cell.entry.key, args).planner)
    return json.loads(json.dumps(settings))


def train_or_load(cell: Cell, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The cell's trained agent (loaded when it exists, else trained and saved) and its training record."""
    settings = train_settings(cell, args)
    saved = read_json(cell.dir / "settings.json")
    if saved is not None and saved != settings:
        changed = changed_keys(saved, settings)
        raise SettingsMismatch(
            f"{cell.dir} holds an agent trained with other settings (changed: {', '.join(changed)}); "
            "use another --workdir or delete that folder"
        )
    write_json(cell.dir / "settings.json", settings)
    record = read_json(cell.dir / "train.json")
    dataset = cell.entry.dataset
    if cell.method.startswith("tt-"):
        agent_dir = cell.dir / "agent"
        if record is not None and (agent_dir / "config.json").is_file():
            agent = TTAgent.from_pretrained(agent_dir, device=args.device)
        else:
            config = tt_config(args.preset, cell.method, cell.entry.key, args)
            resumed = (cell.dir / "train" / "trainer_state.pt").is_file()
            agent = TTAgent(dataset.observation_space, dataset.action_space, config=config, device=args.device)
            start = time.perf_counter()
            agent.fit(dataset, checkpoint_dir=cell.dir / "train", seed=cell.seed)
            record = {"train_s": time.perf_counter() - start, "resumed": resumed, "n_steps": config.train.n_steps}
            if agent.history is not None and agent.history.val_loss:
                record["final_val_loss"] = agent.history.val_loss[-1][1]
            agent.save_pretrained(agent_dir)
            write_json(cell.dir / "train.json", record)
        planner = eval_settings(cell, args)["planner"]
        agent.configure_planner(**planner)
        return agent, record
    cls = BCAgent if cell.method == "bc" else IQLAgent
    path = cell.dir / "agent.pt"
    if record is not None and path.is_file():
        return cls.load(path, device=args.device), record
    agent = cls(dataset.observation_space, dataset.action_space, seed=cell.seed, device=args.device)
    steps = baseline_steps(args.preset, cell.method, args)
    start = time.perf_counter()
    if isinstance(agent, IQLAgent):  # resumable: IQL runs are the long ones
        agent.fit(dataset, steps, seed=cell.seed, checkpoint=cell.dir / "iql_run.pt")
    else:
        agent.fit(dataset, steps, seed=cell.seed)
    record = {"train_s": time.perf_counter() - start, "resumed": False, "n_steps": steps}
    agent.save(path)
    write_json(cell.dir / "train.json", record)
    return agent, record


def evaluate_cell(cell: Cell, agent: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Run the cell's episodes; returns, normalized scores and timing."""
    from stable_baselines3.common.evaluation import evaluate_policy

    settings = eval_settings(cell, args)
    make_kwargs = {} if args.max_episode_steps is None else {"max_episode_steps": args.max_episode_steps}
    venv = make_vec_env(cell.entry.env_spec, settings["n_envs"], seed=settings["env_seed"], **make_kwargs)
    start = time.perf_counter()
    try:
        if cell.method.startswith("tt-"):
            result = evaluate(agent, venv, n_episodes=args.episodes, seed=cell.seed, use_rewards=True)
            returns, lengths, ms_per_action = result.returns, result.lengths, result.ms_per_action
        else:
            returns, lengths = evaluate_policy(
                agent, venv, n_eval_episodes=args.episodes, deterministic=True, return_episode_rewards=True, warn=False
            )
            ms_per_action = None
    finally:
        venv.close()
    eval_s = time.perf_counter() - start
    prov = cell.entry.provenance
    normalized = None
    if prov.get("ref_min_score") is not None:
        low, high = prov["ref_min_score"], prov["ref_max_score"]
        normalized = [100.0 * (float(r) - low) / (high - low) for r in returns]
    values = normalized if normalized is not None else [float(r) for r in returns]
    return {
        "eval_settings": settings,
        "returns": [float(r) for r in returns],
        "lengths": [int(n) for n in lengths],
        "normalized": normalized,
        "score": float(np.mean(values)),
        "score_kind": "normalized" if normalized is not None else "return",
        "eval_s": eval_s,
        "ms_per_action": ms_per_action,
    }


def run_cell(cell: Cell, args: argparse.Namespace) -> dict[str, Any]:
    """Train (or load) and evaluate one cell unless its result is already there; returns its row."""
    path = cell.dir / "result.json"
    cached = read_json(path)
    row = {"dataset": cell.entry.key, "dataset_id": cell.entry.dataset_id, "method": cell.method, "seed": cell.seed}
    if cached is not None and cached.get("eval_settings") == eval_settings(cell, args):
        saved = read_json(cell.dir / "settings.json")
        if saved == train_settings(cell, args):
            return {**row, **cached, "status": "cached"}
    agent, record = train_or_load(cell, args)
    result = {**evaluate_cell(cell, agent, args), "train": record}
    write_json(path, result)
    return {**row, **result, "status": "done"}


# ---------------------------------------------------------------------------------------------- summaries


def aggregate(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(dataset key, method) -> mean, s.e., seeds, per-seed scores, time, over the finished cells."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("score") is not None:
            groups.setdefault((row["dataset"], row["method"]), []).append(row)
    summary = {}
    for key, group in groups.items():
        scores = [r["score"] for r in sorted(group, key=lambda r: r["seed"])]
        mean, se = mean_se(scores)
        summary[key] = {
            "mean": mean,
            "se": se,
            "n": len(scores),
            "scores": scores,
            "kind": group[0]["score_kind"],
            "train_s": sum(r["train"]["train_s"] for r in group),
            "eval_s": sum(r["eval_s"] for r in group),
        }
    return summary


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return " × ".join(_show(v) for v in value)
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _attention_dropout(model: Any) -> float:
    return model.dropout if model.attention_dropout is None else model.attention_dropout


def preset_lines(args: argparse.Namespace, key: str) -> list[str]:
    """What the preset (and any overrides) trains and evaluates, with every reduction from the paper named."""
    tt = tt_config(args.preset, "tt-quantile", key, args)
    m, t, p = tt.model, tt.train, tt.planner
    bc, iql = baseline_steps(args.preset, "bc", args), baseline_steps(args.preset, "iql", args)
    lines = [
        f"- TT ({key}): {m.n_layer} layers × {m.n_embd} dims, {m.n_head} heads, {tt.tokenizer.n_bins} bins, context "
        f"{m.sequence_length} transitions; {t.n_steps:,} steps at batch {t.batch_size}, lr {t.learning_rate:g} "
        f"(warm-up {t.warmup_steps}, cosine to {t.min_lr_ratio:g}×); reward planning with beam {p.beam_width}, "
        f"n_expand {p.n_expand}, horizon {p.horizon}, {p.max_context_transitions} context transitions, "
        f"cdf_act {p.cdf_act}, discount {p.discount}; replanning every step with the real rewards in the context.",
        f"- BC (2×256 MLP, tanh-squashed, MSE): {bc:,} steps; IQL (τ 0.7, β 3, 2×256 networks, the IQL paper's "
        f"locomotion settings): {iql:,} steps; batch 256 both.",
        f"- Evaluation: {args.seeds} seed(s) (a separately trained agent each) × {args.episodes} episode(s); "
        f"{min(args.n_envs, args.episodes)} environments at a time"
        + (f"; episodes cut at {args.max_episode_steps} steps" if args.max_episode_steps else "")
        + ".",
    ]
    paper = paper_preset(key)
    epochs = AUTHORS_EPOCHS.get(key, 50)
    paper_steps = math.ceil(AUTHORS_EPOCH_TRANSITIONS * epochs / paper.train.batch_size)
    pm, pt, pp = paper.model, paper.train, paper.planner
    compare = [  # (what, ours, the paper's, how the paper's is written)
        ("layers × dims", (m.n_layer, m.n_embd), (pm.n_layer, pm.n_embd), f"{pm.n_layer} × {pm.n_embd}"),
        ("attention dropout", _attention_dropout(m), _attention_dropout(pm), _attention_dropout(pm)),
        ("batch", t.batch_size, pt.batch_size, pt.batch_size),
        ("lr", t.learning_rate, pt.learning_rate, f"{pt.learning_rate:g}"),
        ("TT steps", t.n_steps, paper_steps, f"{paper_steps:,} = {epochs} epochs of 1M transitions"),
        ("beam", p.beam_width, pp.beam_width, pp.beam_width),
        ("horizon", p.horizon, pp.horizon, pp.horizon),
        ("BC steps", bc, PAPER_BASELINE_STEPS, f"{PAPER_BASELINE_STEPS:,}"),
        ("IQL steps", iql, PAPER_BASELINE_STEPS, f"{PAPER_BASELINE_STEPS:,}"),
        ("seeds × episodes", (args.seeds, args.episodes), (5, 3), "5 × 3"),
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
    overrides = [
        f"--{k.replace('_', '-')} {getattr(args, k)}" for k in ("tt_steps", "baseline_steps") if getattr(args, k)
    ]
    if args.max_episode_steps:
        overrides.append(f"--max-episode-steps {args.max_episode_steps}")
    if overrides:
        lines.append(
            f"- **Overrides (a smoke run, not a result):** {', '.join(overrides)}: the scores do not measure "
            "the preset."
        )
    return lines


def write_markdown(
    path: Path,
    args: argparse.Namespace,
    entries: list[DatasetEntry],
    rows: list[dict[str, Any]],
    summary: dict[tuple[str, str], dict[str, Any]],
    wall_s: float,
) -> None:
    methods = args.methods
    kinds = {v["kind"] for v in summary.values()}
    unit = (
        "normalized score" if kinds <= {"normalized"} else "score (normalized where the dataset has reference scores)"
    )
    n_seeds = args.seeds
    lines = [
        "# D4RL locomotion: Trajectory Transformer, BC and IQL beside the paper (Table 1, Figure 5)",
        "",
        f"Preset **`{args.preset}`**" + (" (reduced for a CPU; see Settings)" if args.preset == "cpu" else "") + ".",
        f"Command: `{command_line()}`",
        f"Machine: {machine()}.",
        f"Wall time: this invocation {wall_s / 60:.1f} min; all cells below (train + evaluate, including earlier "
        f"resumed invocations) {sum(v['train_s'] + v['eval_s'] for v in summary.values()) / 60:.1f} min.",
        "",
        f"## Results: {unit}, mean ± standard error over seeds",
        "",
        f"Ours: {n_seeds} seed(s) per cell, each seed a separately trained agent whose score is the mean over its "
        f"{args.episodes} episode(s); ± is the standard error over seeds (none with one seed). Paper: Janner et al. "
        "(2021) Table 1 on the D4RL v2 datasets, TT mean ± s.e. over 15 runs (5 models × 3 trajectories); its BC "
        "column is quoted there from Kumar et al. (2020a). †IQL: the TT paper reports IQL only on AntMaze, so the "
        "IQL column is Kostrikov et al. (2021), Table 1. *Data*: the mean score of the dataset's own episodes.",
        "",
    ]
    header = ["dataset", "data"] + [f"{LABELS[m]}" for m in methods]
    header += [f"paper {LABELS[m]}" + ("†" if m == "iql" else "") for m in methods]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in entries:
        cells = [entry.key, "not available" if entry.unavailable else fmt(entry.provenance.get("data_score"))]
        for method in methods:
            s = summary.get((entry.key, method))
            if s is None:
                cells.append("—")
                continue
            partial = f" ({s['n']} of {n_seeds} seeds so far)" if s["n"] < n_seeds else ""
            cells.append(fmt(s["mean"], s["se"]) + ("" if s["kind"] == "normalized" else " (return)") + partial)
        paper = paper_numbers(entry.key)
        for method in methods:
            cells.append(fmt_paper(*paper[method]) if method in paper else "—")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "![ours vs paper](locomotion.png)", ""]

    lines += ["## Datasets (provenance)", ""]
    lines.append(
        "**Ours are not the D4RL v2 datasets** the paper used. `mujoco/*` ids are Farama's Minari re-creation "
        "of D4RL's MuJoCo datasets in Gymnasium v5 environments (new policies and data); `tt-agents/*` ids are "
        "made on this machine by `tt_agents.data_making.make_locomotion_dataset` (SB3 SAC, the D4RL recipe, usually "
        "with a reduced budget); anything else is whatever the id names. What each dataset's metadata says:"
    )
    lines.append("")
    for entry in entries:
        if entry.unavailable:
            lines.append(f"- `{entry.requested}`: **not available** ({entry.unavailable}).")
            continue
        p = entry.provenance
        fallback = f" (fallback for `{entry.requested}`)" if entry.dataset_id != entry.requested else ""
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
    lines += ["", "## Settings", ""]
    key = next((e.key for e in entries if not e.unavailable), "hopper-medium")
    lines += preset_lines(args, key)
    lines += ["", "## Wall time per cell", ""]
    lines += [
        "| dataset | method | seed | score | train (s) | evaluate (s) | ms/action | status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row.get("score") is None:
            lines.append(f"| {row['dataset']} | {row['method']} | {row['seed']} | — | — | — | — | {row['status']} |")
            continue
        train = row["train"]
        train_text = f"{train['train_s']:.0f}" + (" (resumed)" if train.get("resumed") else "")
        ms = "—" if row.get("ms_per_action") is None else f"{row['ms_per_action']:.0f}"
        lines.append(
            f"| {row['dataset']} | {row['method']} | {row['seed']} | {row['score']:.1f} | {train_text} | "
            f"{row['eval_s']:.0f} | {ms} | {row['status']} |"
        )
    lines += [
        "",
        "Train time is that of the invocation that finished training (a resumed TT run counts only its last part); "
        "*cached* cells were finished by an earlier invocation. Per-seed and per-episode values: `locomotion.csv` "
        f"and `result.json` in each cell folder under `{args.workdir}`.",
        "",
    ]
    path.write_text("\n".join(lines))


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    columns = [
        "dataset",
        "dataset_id",
        "method",
        "seed",
        "status",
        "score",
        "score_kind",
        "mean_return",
        "episodes",
        "episode_returns",
        "train_steps",
        "train_s",
        "eval_s",
        "ms_per_action",
        "paper_score",
    ]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            paper = paper_numbers(row["dataset"]).get(row["method"])
            done = row.get("score") is not None
            writer.writerow(
                {
                    "dataset": row["dataset"],
                    "dataset_id": row["dataset_id"],
                    "method": row["method"],
                    "seed": row["seed"],
                    "status": row["status"],
                    "score": f"{row['score']:.3f}" if done else "",
                    "score_kind": row.get("score_kind", ""),
                    "mean_return": f"{np.mean(row['returns']):.3f}" if done else "",
                    "episodes": len(row["returns"]) if done else "",
                    "episode_returns": " ".join(f"{r:.2f}" for r in row["returns"]) if done else "",
                    "train_steps": row["train"]["n_steps"] if done else "",
                    "train_s": f"{row['train']['train_s']:.1f}" if done else "",
                    "eval_s": f"{row['eval_s']:.1f}" if done else "",
                    "ms_per_action": "" if not done or row["ms_per_action"] is None else f"{row['ms_per_action']:.1f}",
                    "paper_score": "" if paper is None else paper[0],
                }
            )


def write_plot(path: Path, methods: list[str], keys: list[str], summary: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Grouped bars per dataset (and their average, as in Figure 5): ours solid with s.e. bars, the paper's hatched."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    groups = list(keys)
    ours = {
        (k, m): (summary[(k, m)]["mean"], summary[(k, m)]["se"]) for k in keys for m in methods if (k, m) in summary
    }
    paper = {(k, m): paper_numbers(k)[m] for k in keys for m in methods if m in paper_numbers(k)}
    if len(keys) > 1:  # Figure 5 plots the per-method average over the datasets
        groups.append("average")
        for source in (ours, paper):
            for m in methods:
                values = [source[(k, m)][0] for k in keys if (k, m) in source]
                if len(values) == len(keys):
                    source[("average", m)] = (float(np.mean(values)), None)
    colors = {"tt-quantile": "#1f77b4", "tt-uniform": "#9ecae1", "bc": "#7f7f7f", "iql": "#2ca02c"}
    n_bars = 2 * len(methods)
    width = 0.8 / n_bars
    fig, ax = plt.subplots(figsize=(max(5.0, 1.5 * len(groups) + 1.5), 4.0))
    x = np.arange(len(groups))
    for i, m in enumerate(methods):
        for j, (source, style) in enumerate(((ours, {}), (paper, {"hatch": "///", "alpha": 0.5}))):
            offset = (2 * i + j - (n_bars - 1) / 2) * width
            values = [source.get((g, m), (np.nan, None)) for g in groups]
            ax.bar(
                x + offset, [v[0] for v in values], width, color=colors[m], edgecolor="black", linewidth=0.4, **style
            )
            with_se = [(x[k] + offset, v[0], v[1]) for k, v in enumerate(values) if v[1] is not None]
            if with_se:
                xs, ys, es = zip(*with_se, strict=True)
                ax.errorbar(xs, ys, yerr=es, fmt="none", ecolor="black", capsize=2, linewidth=0.8)
    ax.set_xticks(x, [g.replace("-", "\n", 1) for g in groups])
    ax.set_ylabel("normalized score")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_title("D4RL locomotion: ours vs the paper")
    handles = [Patch(facecolor=colors[m], edgecolor="black", label=LABELS[m]) for m in methods]
    handles += [
        Patch(facecolor="white", edgecolor="black", label="ours (mean ± s.e. over seeds)"),
        Patch(facecolor="white", edgecolor="black", hatch="///", label="paper (Table 1; IQL: Kostrikov et al.)"),
    ]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=("cpu", "paper"), default="cpu")
    parser.add_argument(
        "--datasets",
        nargs="+",
        help=f"Minari ids (default: cpu {' '.join(CPU_DATASETS)}; paper: the 9 mujoco/ENV/LEVEL-v0 ids, each "
        "falling back to the local tt-agents/ENV/LEVEL-v0 when not available)",
    )
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--seeds", type=int, help="seeds (trained agents) per cell (cpu 2, paper 5)")
    parser.add_argument("--episodes", type=int, help="evaluation episodes per seed (cpu 10, paper 3)")
    parser.add_argument("--n-envs", type=int, default=5, help="environments evaluated (and planned) together")
    parser.add_argument("--workdir", type=Path, default=Path("runs/locomotion"), help="trained agents and results")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="md, csv and png")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, ...")
    smoke = parser.add_argument_group("tiny-budget overrides (smoke runs; the results file says they were used)")
    smoke.add_argument("--tt-steps", type=int, help="TT gradient steps instead of the preset's")
    smoke.add_argument("--baseline-steps", type=int, help="BC and IQL gradient steps instead of the preset's")
    smoke.add_argument("--max-episode-steps", type=int, help="cut evaluation episodes at this many steps")
    args = parser.parse_args(argv)
    for name, value in PRESET_DEFAULTS[args.preset].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.datasets = args.datasets or list(CPU_DATASETS if args.preset == "cpu" else PAPER_DATASETS)
    args.methods = [m for m in METHODS if m in args.methods]
    for name in ("seeds", "episodes", "n_envs", "tt_steps", "baseline_steps", "max_episode_steps"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = get_console()  # the one the trainers' and evaluate()'s progress bars use
    started = time.perf_counter()
    entries = []
    for requested in args.datasets:
        entry = resolve_dataset(requested)
        if entry.unavailable:
            console.print(f"[yellow]{requested}: not available[/] ({entry.unavailable})")
        else:
            p = entry.provenance
            console.print(
                f"{entry.key}: {entry.dataset_id} ({p['total_episodes']} episodes, {p['total_steps']:,} steps, "
                f"env {p['env_id']}, data score {fmt(p['data_score'])})"
            )
        entries.append(entry)
    cells = [  # seed-major: an interrupted run already has every method for its first seeds
        Cell(entry, method, seed, args.workdir)
        for entry in entries
        if not entry.unavailable
        for seed in range(args.seeds)
        for method in args.methods
    ]
    rows, failures = run_cells(
        cells,
        lambda cell: run_cell(cell, args),
        lambda row: f"score {row['score']:.1f}",
        lambda rows: write_results(args, entries, rows, time.perf_counter() - started),  # current after every cell
        console,
    )
    wall_s = time.perf_counter() - started
    summary = write_results(args, entries, rows, wall_s)

    table = Table(title=f"D4RL locomotion, preset {args.preset}: ours (mean ± s.e. over seeds) / [dim]paper[/]")
    table.add_column("dataset")
    for method in args.methods:
        table.add_column(LABELS[method], justify="right")
    for entry in entries:
        paper = paper_numbers(entry.key)
        texts = []
        for m in args.methods:
            s = summary.get((entry.key, m))
            ours = "n/a" if entry.unavailable else fmt(s["mean"], s["se"]) if s else "—"
            texts.append(ours + "\n[dim]" + (fmt_paper(*paper[m]) if m in paper else "—") + "[/]")
        table.add_row(entry.key, *texts)
    console.print(table)

    console.print(
        f"wrote {args.out / 'locomotion.md'} and .csv (.png once a cell has a score) in {wall_s / 60:.1f} min"
        + (f"; [red]{failures} cell(s) failed[/]" if failures else "")
    )
    return 1 if failures else 0


def write_results(
    args: argparse.Namespace, entries: list[DatasetEntry], rows: list[dict[str, Any]], wall_s: float
) -> dict[tuple[str, str], dict[str, Any]]:
    """Write locomotion.md, .csv and .png for the rows so far; returns their summary."""
    summary = aggregate(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    write_markdown(args.out / "locomotion.md", args, entries, rows, summary, wall_s)
    write_csv(args.out / "locomotion.csv", rows)
    keys = [e.key for e in entries if not e.unavailable and any((e.key, m) in summary for m in args.methods)]
    if keys:
        write_plot(args.out / "locomotion.png", args.methods, keys, summary)
    return summary


if __name__ == "__main__":
    sys.exit(main())
