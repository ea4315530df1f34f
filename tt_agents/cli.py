"""The ``tt-agents`` command.

One sub-command per function ``_cmd_<name>(args) -> int``, registered in :func:`build_parser` with
``_add_<name>_parser``; add new sub-commands the same way: ``demo``, ``make-dataset``, ``train``, ``evaluate``,
``analyze``.

``tt-agents make-dataset ENV LEVEL`` makes a D4RL-style dataset locally (see
:func:`tt_agents.data_making.make_locomotion_dataset`), e.g.::

    tt-agents make-dataset hopper medium              # minutes: records the shipped medium policy
    tt-agents make-dataset hopper medium --train-policy   # trains SAC to the medium target (~45 min on 2 cores)
    tt-agents make-dataset hopper expert --cpu        # trains (or continues) the cached SAC run to 200k steps
    tt-agents make-dataset halfcheetah medium-expert --paper
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import AgentConfig
    from .data_making import DatasetBudget


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


# ---------------------------------------------------------------------------------------------- make-dataset


def _add_make_dataset_parser(subparsers: argparse._SubParsersAction) -> None:
    from .data_making import LOCOMOTION_LEVELS, SHORT_ENV_NAMES

    parser = subparsers.add_parser(
        "make-dataset",
        help="make a D4RL-style dataset (random/medium/medium-replay/expert/medium-expert) with SB3 SAC",
        description=(
            "Record a D4RL-style Minari dataset under MINARI_DATASETS_PATH (default ~/.minari/datasets): with the "
            "cpu budget from the data policy shipped with the package where the level has one (hopper, "
            "walker2d and halfcheetah medium and expert), otherwise from a cached SB3 SAC run trained (or "
            "continued) first. The SAC run is resumable: rerun the same command after an interruption."
        ),
    )
    parser.add_argument("env", help=f"Gymnasium id with Box actions, or a short name: {', '.join(SHORT_ENV_NAMES)}")
    parser.add_argument("level", choices=LOCOMOTION_LEVELS)
    preset = parser.add_mutually_exclusive_group()
    preset.add_argument(
        "--cpu",
        dest="preset",
        action="store_const",
        const="cpu",
        help="CPU budget (default): expert = SAC after 200k steps (partially trained), medium search capped at "
        "150k, 100k transitions per level; about an hour for hopper medium + medium-replay + expert on 2 cores",
    )
    preset.add_argument(
        "--paper",
        dest="preset",
        action="store_const",
        const="paper",
        help="D4RL's sizes: SAC expert after 1M steps, 1M transitions per level (hours)",
    )
    parser.set_defaults(preset="cpu")
    parser.add_argument(
        "--train-policy",
        action="store_true",
        help="train SAC for the level even where a shipped policy exists (implied by the SAC settings below)",
    )
    parser.add_argument(
        "--sac-steps", type=_positive_int, help="SAC steps of the expert (the medium search is capped at this too)"
    )
    parser.add_argument("--medium-sac-steps", type=_positive_int, help="cap of the SAC steps spent finding medium")
    parser.add_argument("--dataset-steps", type=_positive_int, help="transitions recorded per level")
    parser.add_argument("--eval-every", type=_positive_int, help="SAC steps between evaluations / policy snapshots")
    parser.add_argument("--eval-episodes", type=_positive_int, help="episodes per SAC evaluation")
    parser.add_argument("--checkpoint-every", type=_positive_int, help="SAC steps between resumable checkpoints")
    parser.add_argument(
        "--workers",
        type=_positive_int,
        help="record with this many processes, every episode with a noise seed of its own: the dataset is the same "
        "for any N, but not the one-process recording of the cpu preset's default (--paper: one per core)",
    )
    parser.add_argument("--workdir", help="root of the cached SAC runs (default ~/.cache/tt_agents/sac)")
    parser.add_argument("--dataset-id", help="Minari id to write (default tt-agents/ENV/LEVEL-v0)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset with the same id")
    parser.add_argument("--seed", type=int, default=0, help="seed of the SAC run and the recordings")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    # For tests and experiments: extra SB3 SAC keyword arguments as JSON, e.g. '{"learning_starts": 50}'.
    parser.add_argument("--sac-kwargs", type=json.loads, default=None, help=argparse.SUPPRESS)
    parser.set_defaults(func=_cmd_make_dataset)


def _budget_from_args(args: argparse.Namespace) -> DatasetBudget:
    from .data_making import DatasetBudget

    budget = DatasetBudget.paper() if args.preset == "paper" else DatasetBudget.cpu()
    changes: dict[str, Any] = {"seed": args.seed}
    sac_settings = ("sac_steps", "medium_sac_steps", "eval_every", "eval_episodes", "checkpoint_every", "sac_kwargs")
    if args.train_policy or any(getattr(args, name) is not None for name in sac_settings):
        changes["shipped_policies"] = False
    if args.sac_steps is not None:
        changes["sac_steps_expert"] = args.sac_steps
        changes["sac_steps_medium"] = min(budget.sac_steps_medium, args.sac_steps)
    if args.medium_sac_steps is not None:
        changes["sac_steps_medium"] = args.medium_sac_steps
    if args.workers is not None:
        changes["recording_workers"] = args.workers
    for name in ("dataset_steps", "eval_every", "eval_episodes", "checkpoint_every", "sac_kwargs"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    return dataclasses.replace(budget, **changes)


def _cmd_make_dataset(args: argparse.Namespace) -> int:
    from .data_making import make_locomotion_dataset, summarize_dataset

    try:
        budget = _budget_from_args(args)
        dataset = make_locomotion_dataset(
            args.env,
            args.level,
            budget=budget,
            workdir=args.workdir,
            dataset_id=args.dataset_id,
            overwrite=args.overwrite,
            show_progress=not args.no_progress,
        )
    except FileExistsError as exc:
        print(f"tt-agents make-dataset: error: {exc} (on the command line: --overwrite)", file=sys.stderr)
        return 2
    summary = summarize_dataset(dataset)
    score = "n/a" if summary.normalized_score is None else f"{summary.normalized_score:.1f}"
    print(f"dataset:          {summary.dataset_id}")
    print(f"episodes / steps: {summary.total_episodes} / {summary.total_steps}")
    print(f"return:           {summary.mean_return:.1f} ± {summary.std_return:.1f}")
    print(f"normalized score: {score}")
    return 0


# ---------------------------------------------------------------------------------------------- train / evaluate


def _add_train_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a Trajectory Transformer on a Minari dataset and save it",
        description="Train on DATASET (a Minari id) and save with save_pretrained.",
    )
    parser.add_argument("dataset", help="Minari dataset id, e.g. tt-agents/hopper/medium-v0")
    parser.add_argument(
        "--env", help="Gymnasium id whose spaces the agent uses, e.g. Hopper-v5 (default: the dataset's own spaces)"
    )
    parser.add_argument("--out", required=True, help="directory to save the trained agent to")
    parser.add_argument("--preset", choices=("cpu", "paper"), default="cpu", help="configuration preset")
    parser.add_argument("--steps", type=_positive_int, help="gradient steps (default: the preset's)")
    parser.add_argument("--mode", choices=("reward", "imitation", "q"), help="planning mode saved with the agent")
    parser.add_argument(
        "--tokenizer",
        choices=("quantile", "uniform"),
        help="discretization strategy (default: the preset's, uniform for cpu, quantile for paper)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="an AgentConfig as JSON (AgentConfig.to_dict(), or a saved agent's config.json) instead of the preset",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        type=_config_override,
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="change one setting of the config, VALUE read as JSON where it parses (repeatable), e.g. "
        "--set tokenizer.n_bins=500 --set data.termination_penalty=null --set train.batch_size=128",
    )
    parser.add_argument("--checkpoint-dir", help="resumable training checkpoints (default: OUT/training)")
    parser.add_argument("--log-dir", help="training metrics: metrics.csv, curves.png, TensorBoard (default: OUT/logs)")
    parser.add_argument("--seed", type=int, help="training seed (default: the config's train.seed, 0 unless set)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=_cmd_train)


def _config_override(text: str) -> tuple[str, str, Any]:
    """``--set``'s ``SECTION.FIELD=VALUE``: the value as JSON (``null``, numbers, ``true``) or else as a string."""
    key, equals, raw = text.partition("=")
    section, dot, name = key.partition(".")
    if not (equals and dot and section and name):
        raise argparse.ArgumentTypeError(f"expected SECTION.FIELD=VALUE (e.g. tokenizer.n_bins=500), got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return section, name, value


def _train_config(args: argparse.Namespace) -> AgentConfig:
    """The AgentConfig of ``tt-agents train``: ``--config`` or the preset, then ``--mode``, ``--tokenizer`` and every
    ``--set``, applied in that order; a bad file, section, field or value is a ValueError naming it."""
    from .config import AgentConfig, cpu_preset, paper_preset

    if args.config:
        try:
            with open(args.config, encoding="utf-8") as f:
                settings = json.load(f)
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"--config {args.config}: cannot read it as JSON ({exc})") from exc
        if isinstance(settings, dict) and settings.get("format") == "tt-agents":  # a saved agent's config.json
            settings = settings.get("config")
        if not isinstance(settings, dict):
            raise ValueError(f"--config {args.config}: expected a JSON object of config sections")
        settings = AgentConfig.from_dict(settings).to_dict()  # checked; sections it lacks take their defaults
    else:
        settings = (cpu_preset() if args.preset == "cpu" else paper_preset()).to_dict()
    changes = [("planner", "mode", args.mode)] if args.mode else []
    changes += [("tokenizer", "strategy", args.tokenizer)] if args.tokenizer else []
    for section, name, value in changes + args.overrides:
        if section not in settings:
            raise ValueError(f"--set {section}.{name}: no config section {section!r}; sections are {sorted(settings)}")
        if name not in settings[section]:
            known = ", ".join(sorted(settings[section]))
            raise ValueError(f"--set {section}.{name}: {section} has no field {name!r}; its fields are {known}")
        settings[section][name] = value
    return AgentConfig.from_dict(settings)


def _cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    import gymnasium as gym

    from .agent import TTAgent
    from .data_loading import load_minari_dataset
    from .distributed import distributed_rank_and_size, leave_distributed
    from .training_log import METRICS_FILE, plot_training_log

    config = _train_config(args)
    if args.env:
        env = gym.make(args.env)
        spaces = env.observation_space, env.action_space
    else:
        dataset = load_minari_dataset(args.dataset)
        spaces = dataset.observation_space, dataset.action_space
    agent = TTAgent(*spaces, config=config, device=args.device)
    checkpoint_dir = args.checkpoint_dir or str(Path(args.out) / "training")
    log_dir = Path(args.log_dir or Path(args.out) / "logs")
    try:
        agent.fit(
            args.dataset,
            args.steps,
            checkpoint_dir=checkpoint_dir,
            log_dir=log_dir,
            seed=args.seed,
            show_progress=not args.no_progress,
        )
        rank = distributed_rank_and_size()[0]
    finally:
        leave_distributed()
    if rank != 0:  # under torchrun the first process alone saves
        return 0
    plot_training_log(log_dir / METRICS_FILE, log_dir / "curves.png")
    path = agent.save_pretrained(args.out)
    ce = agent.history.val_cross_entropy[-1][1] if agent.history.val_cross_entropy else float("nan")
    print(f"saved {path} (validation cross-entropy {ce:.3f} nats/token)")
    return 0


def _add_evaluate_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a saved agent on a Gymnasium environment",
        description="Load CHECKPOINT (from save_pretrained) and run episodes with SB3's evaluate_policy.",
    )
    parser.add_argument("checkpoint", help="directory written by save_pretrained / tt-agents train")
    parser.add_argument("--env", required=True, help="Gymnasium environment id")
    parser.add_argument("--episodes", type=_positive_int, default=10)
    parser.add_argument("--n-envs", type=_positive_int, default=1, help="environments planned together")
    parser.add_argument("--mode", choices=("reward", "imitation"), help="override the saved planning mode")
    parser.add_argument("--beam-width", type=_positive_int)
    parser.add_argument("--horizon", type=_positive_int)
    parser.add_argument("--use-rewards", action="store_true", help="give the agent the real rewards")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--max-episode-steps",
        type=_positive_int,
        help="end every episode after this many steps (needed where the environment has no time limit; "
        "episodes cut shorter than its own limit get no normalized score)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=_cmd_evaluate)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .agent import TTAgent
    from .evaluation import evaluate

    agent = TTAgent.from_pretrained(args.checkpoint, device=args.device)
    changes = {"mode": args.mode, "beam_width": args.beam_width, "horizon": args.horizon}
    changes = {k: v for k, v in changes.items() if v is not None}
    if changes:
        agent.configure_planner(**changes)
    limit = {} if args.max_episode_steps is None else {"max_episode_steps": args.max_episode_steps}
    result = evaluate(
        agent,
        args.env,
        n_episodes=args.episodes,
        n_envs=args.n_envs,
        seed=args.seed,
        use_rewards=args.use_rewards,
        **limit,
    )
    print(json.dumps(result.to_dict(), indent=1) if args.json else result.summary())
    return 0


# ---------------------------------------------------------------------------------------------- analyze


def _add_analyze_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="the model as a predictor: attention maps, long-horizon likelihood, rendered rollouts",
        description=(
            "On one episode of DATASET: the saved agent's attention maps, the log-likelihood of the real states "
            "under its sampled rollouts (recorded actions) beside the discrete oracle, and, for a MuJoCo "
            "locomotion environment, the real and a predicted rollout rendered (set MUJOCO_GL=egl headless)."
        ),
    )
    parser.add_argument("checkpoint", help="directory written by save_pretrained / tt-agents train")
    parser.add_argument("--dataset", required=True, help="Minari dataset id of the episodes")
    parser.add_argument("--out", required=True, help="folder for the figures")
    parser.add_argument("--episode", type=int, default=-1, help="episode index (default: the last)")
    parser.add_argument("--start", type=int, default=0, help="step of the episode to start from")
    parser.add_argument("--horizon", type=_positive_int, default=50)
    parser.add_argument("--samples", type=_positive_int, default=100)
    parser.add_argument("--no-render", action="store_true", help="skip the rendered rollout")
    parser.add_argument("--device", default="auto")
    parser.set_defaults(func=_cmd_analyze)


def _cmd_analyze(args: argparse.Namespace) -> int:
    from .agent import TTAgent
    from .analysis import analyze_episode
    from .data_loading import load_episodes, load_minari_dataset

    agent = TTAgent.from_pretrained(args.checkpoint, device=args.device)
    dataset = load_minari_dataset(args.dataset)
    episodes = load_episodes(dataset, observation_key=agent.observation_keys)
    episode = episodes[args.episode]
    env_id = None if args.no_render else dataset.spec.env_spec.id
    paths = analyze_episode(
        agent, episode, args.out, start=args.start, horizon=args.horizon, n_samples=args.samples, env_id=env_id
    )
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


# ---------------------------------------------------------------------------------------------- demo


def _add_demo_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the quick start, offline: make a dataset, train, evaluate, save (a few minutes on a CPU)",
        description=(
            "Record the scripted InvertedPendulum-v5 expert as a local Minari dataset, train a Trajectory "
            "Transformer (cpu preset) on it, evaluate it with likelihood planning, and save it."
        ),
    )
    parser.add_argument("--steps", type=_positive_int, default=1000, help="training steps")
    parser.add_argument("--episodes", type=_positive_int, default=3, help="evaluation episodes")
    parser.add_argument("--episode-steps", type=_positive_int, default=200, help="time limit of evaluation episodes")
    parser.add_argument("--out", default="runs/demo", help="where the trained agent is saved")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    import gymnasium as gym
    from rich.console import Console

    from .agent import TTAgent
    from .config import cpu_preset
    from .data_making import make_inverted_pendulum_dataset
    from .evaluation import evaluate

    console = Console()
    env_id = "InvertedPendulum-v5"
    console.rule("1/3  dataset")
    dataset = make_inverted_pendulum_dataset("expert", seed=args.seed, overwrite=True)
    console.print(f"{dataset.spec.dataset_id}: {dataset.total_episodes} episodes, {dataset.total_steps} steps")
    console.rule("2/3  training (cpu preset)")
    env = gym.make(env_id)
    config = cpu_preset()
    config.planner = dataclasses.replace(config.planner, mode="imitation")
    agent = TTAgent(env.observation_space, env.action_space, config=config, device=args.device)
    agent.fit(dataset, args.steps, seed=args.seed)
    ce = agent.history.val_cross_entropy[-1][1]
    console.print(f"validation cross-entropy {ce:.3f} nats/token (uniform over {config.tokenizer.n_bins} bins: 4.605)")
    console.rule("3/3  evaluation")
    result = evaluate(
        agent,
        env_id,
        n_episodes=args.episodes,
        n_envs=args.episodes,
        seed=args.seed,
        max_episode_steps=args.episode_steps,
    )
    console.print(
        f"TT (imitation planning): {result.summary()}; the expert scores {args.episode_steps} "
        f"in {args.episode_steps}-step episodes"
    )
    path = agent.save_pretrained(args.out)
    console.print(f"saved to {path}; reload with TTAgent.from_pretrained({str(path)!r})")
    return 0


# ---------------------------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    """The ``tt-agents`` argument parser with every sub-command."""
    parser = argparse.ArgumentParser(prog="tt-agents", description="Trajectory Transformer agents for offline RL.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_demo_parser(subparsers)
    _add_make_dataset_parser(subparsers)
    _add_train_parser(subparsers)
    _add_evaluate_parser(subparsers)
    _add_analyze_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tt-agents`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    What the user gave wrong (a missing or corrupt checkpoint, an unknown environment or one whose spaces do not
    fit the agent, a dataset that is not there, a bad setting) is one line on stderr and exit status 2."""
    import gymnasium as gym

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (FileNotFoundError, ValueError, TypeError, gym.error.Error) as exc:
        print(f"tt-agents {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
