"""Goal-conditioned planning in a continuous four-rooms world (paper Section 3.2 and Figure 6).

The Trajectory Transformer is conditioned on a desired final state and likelihood beam search finds a path
there, with no rewards at all:

1. record a Minari dataset of a noisy scripted expert (noise level drawn per episode from 0.1, 0.3, 0.5),
   start and goal sampled uniformly over the free space;
2. train a goal-conditioned Trajectory Transformer: every training window starts with the episode's final
   position as goal tokens (hindsight relabelling, applied to 8 random prefixes of each episode too); the
   planner's ``goal`` mode puts the environment's ``desired_goal`` there instead and keeps the most likely
   plan (beam 16, horizon 4), replanning every step;
3. evaluate it, the scripted expert and a goal-conditioned behaviour-cloning baseline on the same held-out
   start/goal pairs within the environment's 100-step limit, print the success rates with the seed, save the
   checkpoint and a figure of the paths taken (start and goal marked, like Figure 6).

Run (about 10 minutes on a 2-core CPU; ``--quick`` for a smoke run of about a minute)::

    python examples/four_rooms_goal.py --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from tt_agents.baselines import GoalBCAgent  # noqa: E402
from tt_agents.data_making.four_rooms import (  # noqa: E402
    DEFAULT_EPISODES,
    DEFAULT_NOISE,
    DEFAULT_PREFIXES,
    FOUR_ROOMS_DATASET_ID,
    make_four_rooms_dataset,
    training_episodes,
)
from tt_agents.envs import FOUR_ROOMS_ID, FourRoomsEnv  # noqa: E402
from tt_agents.envs.four_rooms import MAX_EPISODE_STEPS  # noqa: E402
from tt_agents.envs.four_rooms_expert import ScriptedExpertPolicy  # noqa: E402
from tt_agents.pretrained.four_rooms_recipe import (  # noqa: E402
    DEFAULT_TRAIN_STEPS,
    EVAL_SEED,
    GoalReachingResult,
    held_out_pairs,
    rollout_goal_reaching,
    train_four_rooms_agent,
)

BC_STEPS = 5000
"""Adam steps of the goal-conditioned BC baseline (2x256 MLP, batch 256)."""
EXPERT_NOISE = min(DEFAULT_NOISE)
"""The scripted expert is evaluated with the dataset's lowest noise level."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes-data", type=int, help=f"expert episodes to record (default {DEFAULT_EPISODES})")
    parser.add_argument("--steps", type=int, help=f"Trajectory Transformer steps (default {DEFAULT_TRAIN_STEPS})")
    parser.add_argument("--bc-steps", type=int, help=f"goal-conditioned BC steps (default {BC_STEPS})")
    parser.add_argument("--eval-pairs", type=int, help="held-out start/goal pairs (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="seeds data, training, planning and the eval pairs")
    parser.add_argument("--out", type=Path, default=Path("runs/four_rooms_goal"), help="output directory")
    parser.add_argument("--dataset-id", default=FOUR_ROOMS_DATASET_ID, help="Minari id of the recorded data")
    parser.add_argument("--figure-paths", type=int, default=8, help="episodes drawn in the figure")
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 episodes, 300 + 500 steps, 10 pairs")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    defaults = (200, 300, 500, 10) if args.quick else (DEFAULT_EPISODES, DEFAULT_TRAIN_STEPS, BC_STEPS, 100)
    for name, default in zip(("episodes_data", "steps", "bc_steps", "eval_pairs"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)
    return args


# ---------------------------------------------------------------------------------------------- figure


def draw_world(ax: plt.Axes) -> None:
    """The four rooms: border, walls (dark grey) and nothing else, in world coordinates."""
    env = FourRoomsEnv()
    ax.add_patch(Rectangle((0, 0), 1, 1, fill=False, lw=1.5, ec="0.25"))
    for x0, y0, x1, y1 in env.wall_rects:
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, color="0.25", lw=0))
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def draw_path(ax: plt.Axes, path: np.ndarray, goal: np.ndarray, cmap: str = "Blues") -> None:
    """A path whose colour saturates as time goes on (as in the paper's Figure 6), start dot and goal star."""
    segments = np.stack([path[:-1], path[1:]], axis=1)  # (T, 2, 2)
    colours = plt.get_cmap(cmap)(np.linspace(0.35, 1.0, len(segments)))
    ax.add_collection(LineCollection(segments, colors=colours, linewidths=2.0, capstyle="round"))
    ax.plot(*path[0], "o", ms=8, mfc="tab:orange", mec="k", zorder=5)
    ax.plot(*goal, "*", ms=15, mfc="tab:green", mec="k", zorder=5)


def figure_indices(pairs: np.ndarray, n: int) -> list[int]:
    """The first ``n`` pairs, preferring those whose start and goal are in different rooms (cross doorways)."""
    rooms = FourRoomsEnv.room_of(pairs)  # (P, 2)
    crossing = [i for i in range(len(pairs)) if rooms[i, 0] != rooms[i, 1]]
    same = [i for i in range(len(pairs)) if rooms[i, 0] == rooms[i, 1]]
    return (crossing + same)[:n]


def save_figure(result: GoalReachingResult, pairs: np.ndarray, n: int, title: str, path: Path) -> Path:
    """One panel per episode: real paths taken by the planner (not sampled plans), failures titled in red."""
    indices = figure_indices(pairs, n)
    cols = min(4, len(indices))
    rows = -(-len(indices) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3.2 * rows + 0.3), squeeze=False, layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), indices, strict=False):
        ax.axis("on")
        for spine in ax.spines.values():
            spine.set_visible(False)
        draw_world(ax)
        draw_path(ax, result.paths[i], pairs[i, 1])
        reached = bool(result.success[i])
        outcome = f"reached in {result.steps[i]} steps" if reached else f"not reached in {result.steps[i]} steps"
        ax.set_title(f"pair {i}: {outcome}", fontsize=9, color="black" if reached else "tab:red")
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    show = not args.no_progress
    start = time.perf_counter()
    print(f"seed {args.seed}; torch threads {torch.get_num_threads()}; output in {args.out}")

    tick = time.perf_counter()
    dataset = make_four_rooms_dataset(
        args.episodes_data, DEFAULT_NOISE, args.seed, args.dataset_id, overwrite=True, show_progress=show
    )
    print(
        f"dataset {args.dataset_id}: {dataset.total_episodes} episodes, {dataset.total_steps} steps "
        f"({time.perf_counter() - tick:.0f} s)"
    )

    tick = time.perf_counter()
    agent = train_four_rooms_agent(dataset, n_steps=args.steps, seed=args.seed, show_progress=show)
    train_seconds = time.perf_counter() - tick
    checkpoint = agent.save_pretrained(args.out / "checkpoint")
    print(f"Trajectory Transformer trained in {train_seconds:.0f} s; checkpoint {checkpoint}")

    tick = time.perf_counter()
    env = gym.make(FOUR_ROOMS_ID)
    bc = GoalBCAgent(env.observation_space, env.action_space, seed=args.seed, device="cpu")
    episodes = training_episodes(dataset, DEFAULT_PREFIXES, args.seed)  # the same relabelled episodes as TT
    bc.fit(episodes, n_steps=args.bc_steps, seed=args.seed, show_progress=show)
    env.close()
    print(f"goal-conditioned BC trained in {time.perf_counter() - tick:.0f} s")

    pairs = held_out_pairs(args.eval_pairs, EVAL_SEED + args.seed)
    agent.seed(args.seed)
    policies = {
        "Trajectory Transformer (goal mode)": agent,
        f"scripted expert (noise {EXPERT_NOISE})": ScriptedExpertPolicy(EXPERT_NOISE, args.seed),
        "goal-conditioned BC": bc,
    }
    results: dict[str, GoalReachingResult] = {}
    for name, policy in policies.items():
        results[name] = rollout_goal_reaching(policy, pairs, MAX_EPISODE_STEPS)
        print(f"evaluated {name} in {results[name].seconds:.0f} s")

    print(
        f"\nsuccess on {len(pairs)} held-out start/goal pairs (reset seeds {EVAL_SEED + args.seed}..."
        f"{EVAL_SEED + args.seed + len(pairs) - 1}), {MAX_EPISODE_STEPS}-step budget, seed {args.seed}:"
    )
    print(f"{'policy':<38} {'success':>8} {'steps to goal':>14} {'ms/step':>8}")
    summary = {}
    for name, result in results.items():
        print(
            f"{name:<38} {100 * result.success_rate:>7.0f}% {result.mean_steps_to_success:>14.1f} "
            f"{result.ms_per_call:>8.1f}"
        )
        summary[name] = {
            "success_rate": result.success_rate,
            "mean_steps_to_success": result.mean_steps_to_success,
            "ms_per_batched_step": result.ms_per_call,
        }

    tt = results["Trajectory Transformer (goal mode)"]
    figure = save_figure(
        tt,
        pairs,
        args.figure_paths,
        f"Trajectory Transformer, goal-conditioned beam search (seed {args.seed}): "
        f"{100 * tt.success_rate:.0f}% of {len(pairs)} held-out pairs reached (start: dot, goal: star; "
        "darker = later)",
        args.out / "four_rooms_goal_paths.png",
    )
    total = time.perf_counter() - start
    report = {"seed": args.seed, "args": {k: str(v) for k, v in vars(args).items()}, "results": summary}
    report["total_seconds"] = total
    (args.out / "results.json").write_text(json.dumps(report, indent=2))
    print(f"\nfigure {figure}\nresults {args.out / 'results.json'}\ntotal time {total / 60:.1f} min")
    return summary


if __name__ == "__main__":
    main()
