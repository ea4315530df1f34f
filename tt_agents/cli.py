"""The ``tt-agents`` command.

One sub-command per function ``_cmd_<name>(args) -> int``, registered in :func:`build_parser` with
``_add_<name>_parser``; add new sub-commands the same way.

``tt-agents make-dataset ENV LEVEL`` makes a D4RL-style dataset locally (see
:func:`tt_agents.datasets.make_locomotion_dataset`), e.g.::

    tt-agents make-dataset hopper medium --cpu        # ~45 min on a 2-core CPU, then medium-replay is minutes
    tt-agents make-dataset hopper expert --cpu        # continues the cached SAC run to 200k steps
    tt-agents make-dataset halfcheetah medium-expert --paper
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


# ---------------------------------------------------------------------------------------------- make-dataset


def _add_make_dataset_parser(subparsers: argparse._SubParsersAction) -> None:
    from tt_agents.datasets import LOCOMOTION_LEVELS, SHORT_ENV_NAMES

    parser = subparsers.add_parser(
        "make-dataset",
        help="make a D4RL-style dataset (random/medium/medium-replay/expert/medium-expert) with SB3 SAC",
        description=(
            "Train (or continue) a cached SB3 SAC run and record a D4RL-style Minari dataset under "
            "MINARI_DATASETS_PATH (default ~/.minari/datasets). The SAC run is resumable: rerun the same "
            "command after an interruption."
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
        "--sac-steps", type=_positive_int, help="SAC steps of the expert (the medium search is capped at this too)"
    )
    parser.add_argument("--medium-sac-steps", type=_positive_int, help="cap of the SAC steps spent finding medium")
    parser.add_argument("--dataset-steps", type=_positive_int, help="transitions recorded per level")
    parser.add_argument("--eval-every", type=_positive_int, help="SAC steps between evaluations / policy snapshots")
    parser.add_argument("--eval-episodes", type=_positive_int, help="episodes per SAC evaluation")
    parser.add_argument("--checkpoint-every", type=_positive_int, help="SAC steps between resumable checkpoints")
    parser.add_argument("--workdir", help="root of the cached SAC runs (default ~/.cache/tt_agents/sac)")
    parser.add_argument("--dataset-id", help="Minari id to write (default tt-agents/ENV/LEVEL-v0)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset with the same id")
    parser.add_argument("--seed", type=int, default=0, help="seed of the SAC run and the recordings")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    # For tests and experiments: extra SB3 SAC keyword arguments as JSON, e.g. '{"learning_starts": 50}'.
    parser.add_argument("--sac-kwargs", type=json.loads, default=None, help=argparse.SUPPRESS)
    parser.set_defaults(func=_cmd_make_dataset)


def _budget_from_args(args: argparse.Namespace):  # -> DatasetBudget
    from tt_agents.datasets import DatasetBudget

    budget = DatasetBudget.paper() if args.preset == "paper" else DatasetBudget.cpu()
    changes: dict = {"seed": args.seed}
    if args.sac_steps is not None:
        changes["sac_steps_expert"] = args.sac_steps
        changes["sac_steps_medium"] = min(budget.sac_steps_medium, args.sac_steps)
    if args.medium_sac_steps is not None:
        changes["sac_steps_medium"] = args.medium_sac_steps
    for name in ("dataset_steps", "eval_every", "eval_episodes", "checkpoint_every", "sac_kwargs"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    return dataclasses.replace(budget, **changes)


def _cmd_make_dataset(args: argparse.Namespace) -> int:
    from tt_agents.datasets import make_locomotion_dataset, summarize_dataset

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
    except ValueError as exc:
        print(f"tt-agents make-dataset: error: {exc}", file=sys.stderr)
        return 2
    summary = summarize_dataset(dataset)
    score = "n/a" if summary.normalized_score is None else f"{summary.normalized_score:.1f}"
    print(f"dataset:          {summary.dataset_id}")
    print(f"episodes / steps: {summary.total_episodes} / {summary.total_steps}")
    print(f"return:           {summary.mean_return:.1f} ± {summary.std_return:.1f}")
    print(f"normalized score: {score}")
    return 0


# ---------------------------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    """The ``tt-agents`` argument parser with every sub-command."""
    parser = argparse.ArgumentParser(prog="tt-agents", description="Trajectory Transformer agents for offline RL.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_make_dataset_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tt-agents`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
