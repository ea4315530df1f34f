"""Goal reaching on procedurally generated maps: MiniGrid-MultiRoom-N4-S5 (paper Appendix F and Figure 7).

The map changes every episode and the actions are discrete. The Trajectory Transformer reads a map through a small
CNN whose embedding is added to every token's embedding: by default (``--view local``) the 11 x 11 cells around the
agent, turned its way, at every step (the appendix's "current observation image"; the network then plans from the
current step), or with ``--view map`` the whole map of the episode. The agent's cell and direction and the goal cell
are tokens, the goal prepended (goal mode); the local view also shows the goal's cell where it lies inside it, as
MiniGrid's own image shows its goal square (``--no-goal-in-view`` leaves it out):

1. record a Minari dataset on a new map every episode: the scripted shortest-path expert, with the chance of a
   random action drawn per episode from 0, 0, 0, 0.25 and 1 (a mixture of expert and uniform random
   trajectories, as in the appendix);
2. train the goal-conditioned Trajectory Transformer on it, every episode relabelled with the cell it ended in
   and with random prefixes of it (hindsight: the random trajectories are goal-reaching data too), each relabelled
   goal drawn into that episode's views;
3. evaluate it, the scripted expert and two goal-conditioned BC baselines (one sees the agent's cell and the goal,
   the other also the map the Transformer reads, its cells flattened) on held-out maps (reset seeds checked absent
   from the dataset), print the goal-reaching rates with the seed, save the checkpoint and a grid of example paths
   like Figure 7.

Run (``--quick`` for a smoke run of a few minutes)::

    python examples/minigrid_goal.py --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from gymnasium import spaces  # noqa: E402

from tt_agents import TTAgent, cpu_preset  # noqa: E402
from tt_agents.baselines import GoalBCAgent  # noqa: E402
from tt_agents.data_loading import Episode, load_episodes, relabelled_prefixes  # noqa: E402
from tt_agents.data_making import MINIGRID_DATASET_ID, MULTIROOM_ID, make_minigrid_dataset, training_seeds  # noqa: E402
from tt_agents.envs.minigrid_goal import MiniGridGoalEnv, MiniGridGoalExpert, draw_goal  # noqa: E402

EVAL_SEED = 1_000_000
"""Held-out maps are reset with seeds from here on (each checked absent from the dataset)."""
PREFIXES = 4
"""Relabelled prefixes per recorded episode."""
LOCAL_VIEW_DATASET_ID = "tt-agents/minigrid-multiroom/mixed-local-v0"
"""Default Minari id of the data recorded with the local view."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes-data", type=int, help="episodes to record (default 2000)")
    parser.add_argument("--steps", type=int, help="Trajectory Transformer steps (default 12000)")
    parser.add_argument("--bc-steps", type=int, help="goal-conditioned BC steps (default 5000)")
    parser.add_argument("--eval-maps", type=int, help="held-out maps (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="seeds data, training, planning and the held-out maps")
    parser.add_argument("--out", type=Path, default=Path("runs/minigrid_goal"), help="output directory")
    parser.add_argument("--dataset-id", help="Minari id of the recorded data (default: one per --view)")
    parser.add_argument(
        "--view",
        choices=("local", "map"),
        default="local",
        help="the map the network reads: the 11 x 11 cells around the agent at every step, or the whole map",
    )
    parser.add_argument(
        "--goal-in-view",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="draw each episode's (relabelled) goal in the local view where it lies, as MiniGrid's image does",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 episodes, 200 + 300 steps, 5 maps")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    defaults = (100, 200, 300, 5) if args.quick else (2000, 12000, 5000, 100)
    for name, default in zip(("episodes_data", "steps", "bc_steps", "eval_maps"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)
    args.goal_in_view &= args.view == "local"  # the whole map never shows the goal
    if args.dataset_id is None:
        args.dataset_id = MINIGRID_DATASET_ID if args.view == "map" else LOCAL_VIEW_DATASET_ID
    return args


def make_env(view: str = "local", goal_in_view: bool = False) -> MiniGridGoalEnv:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # minigrid's deprecation warnings
        return MiniGridGoalEnv(MULTIROOM_ID, view=view, goal_in_view=goal_in_view)


def held_out_seeds(n: int, first: int, trained: set[int]) -> list[int]:
    """``n`` reset seeds from ``first`` on that the dataset never used."""
    seeds, seed = [], first
    while len(seeds) < n:
        if seed not in trained:
            seeds.append(seed)
        seed += 1
    return seeds


def rollout(policy, env: MiniGridGoalEnv, seed: int) -> tuple[bool, np.ndarray, np.ndarray, np.ndarray]:
    """One episode on the map of ``seed``: (reached the goal, the cells visited (T + 1, 2), the map, the goal)."""
    obs, _ = env.reset(seed=seed)
    goal = obs["desired_goal"]
    if hasattr(policy, "reset"):
        policy.reset()
    cells, success = [obs["observation"][:2]], False
    for _ in range(env.unwrapped.max_steps):
        action = policy.act(obs) if hasattr(policy, "act") else policy(obs)
        obs, _, terminated, truncated, info = env.step(int(action))
        cells.append(obs["observation"][:2])
        if terminated or truncated:
            success = bool(info["is_success"])
            break
    return success, np.array(cells), env.full_map, goal


class GoalBCPolicy:
    """``act(obs)`` of a goal-conditioned BC agent (deterministic); with ``sees_map``, its observation is the
    agent's cell and direction followed by the map's cells (see :func:`with_map_in_observation`)."""

    def __init__(self, agent: GoalBCAgent, sees_map: bool = False) -> None:
        self.agent, self.sees_map = agent, sees_map

    def act(self, obs: dict) -> int:
        if self.sees_map:
            obs = {**obs, "observation": np.concatenate([obs["observation"], obs["map"].ravel()])}
        return int(self.agent.predict(obs, deterministic=True)[0])


def with_map_in_observation(env: MiniGridGoalEnv, episodes: list[Episode]) -> tuple[spaces.Dict, list[Episode]]:
    """A goal-env space and episodes whose ``observation`` is the agent's cell and direction followed by the map's
    cells (a map per step flattened), for a BC that sees what the Trajectory Transformer's map encoder sees."""
    space, cells = env.observation_space["observation"], int(np.prod(env.observation_space["map"].shape))
    observation = spaces.Box(
        np.concatenate([space.low, np.zeros(cells, np.float32)]),
        np.concatenate([space.high, np.full(cells, 255.0, np.float32)]),
    )
    out = []
    for e in episodes:
        maps = e.map.reshape(len(e), -1) if e.map_per_step else np.tile(e.map.ravel(), (len(e), 1))  # (T, cells)
        out.append(e.replaced(observations=np.concatenate([e.observations, maps], 1), final_observation=None, map=None))
    return spaces.Dict({"observation": observation, "desired_goal": env.observation_space["desired_goal"]}), out


def with_goal_drawn(episodes: list[Episode]) -> list[Episode]:
    """Episodes whose local views show each episode's own goal (after relabelling), as the environment draws its
    goal with ``goal_in_view=True``."""
    return [e.replaced(map=draw_goal(e.map, e.observations, e.goal)) for e in episodes]


def draw(ax: plt.Axes, grid: np.ndarray, path: np.ndarray, goal: np.ndarray, success: bool) -> None:
    """A map (walls dark, doors brown), the path taken (start dot, goal star)."""
    colours = np.ones((*grid.shape, 3))
    colours[grid == 0] = 0.85
    colours[grid == 2] = 0.25
    colours[grid == 4] = (0.6, 0.4, 0.2)
    ax.imshow(colours, origin="upper")
    ax.plot(path[:, 0], path[:, 1], color="tab:blue", lw=2)
    ax.scatter(*path[0], color="tab:blue", s=30, zorder=3)
    ax.scatter(*goal, marker="*", color="tab:green" if success else "tab:red", s=120, zorder=3)
    ax.set_xticks([])
    ax.set_yticks([])


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    show = not args.no_progress
    start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"seed {args.seed}; torch threads {torch.get_num_threads()}; output in {args.out}")

    tick = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = make_minigrid_dataset(
            args.episodes_data,
            seed=args.seed,
            dataset_id=args.dataset_id,
            view=args.view,
            overwrite=True,
            show_progress=show,
        )
    reached = np.mean([float(np.sum(e.rewards)) > 0 for e in dataset.iterate_episodes()])
    print(
        f"dataset {args.dataset_id}: {dataset.total_episodes} episodes on as many maps, {dataset.total_steps} steps, "
        f"{100 * reached:.0f}% end at the map's goal ({time.perf_counter() - tick:.0f} s)"
    )
    episodes = load_episodes(dataset, observation_key="observation", goal_key="achieved_goal", map_key="map")
    episodes = relabelled_prefixes(episodes, PREFIXES, seed=args.seed, goal_columns=slice(0, 2))
    if args.goal_in_view:
        episodes = with_goal_drawn(episodes)

    env = make_env(args.view, args.goal_in_view)
    config = cpu_preset()
    config.tokenizer = replace(config.tokenizer, strategy="quantile")  # the bins results/minigrid was measured with
    config.model = replace(config.model, ordinal_embedding=False)  # and its token embeddings alone
    config.planner = replace(config.planner, mode="goal", beam_width=16, horizon=4, seed=args.seed)
    config.train = replace(config.train, n_steps=args.steps, min_epochs=None, seed=args.seed)
    tick = time.perf_counter()
    agent = TTAgent(env.observation_space, env.action_space, config=config, device="auto")
    agent.fit(episodes, show_progress=show)
    checkpoint = agent.save_pretrained(args.out / "checkpoint")
    print(
        f"Trajectory Transformer ({args.view} view {agent.config.model.map_shape}) trained in "
        f"{time.perf_counter() - tick:.0f} s; checkpoint {checkpoint}"
    )

    tick = time.perf_counter()
    bc = GoalBCAgent(env.observation_space, env.action_space, seed=args.seed, device="cpu")
    bc.fit(episodes, n_steps=args.bc_steps, seed=args.seed, show_progress=show)
    bc_space, bc_episodes = with_map_in_observation(env, episodes)
    map_bc = GoalBCAgent(bc_space, env.action_space, seed=args.seed, device="cpu")
    map_bc.fit(bc_episodes, n_steps=args.bc_steps, seed=args.seed, show_progress=show)
    print(f"goal-conditioned BC (without and with the {args.view} map) trained in {time.perf_counter() - tick:.0f} s")

    seeds = held_out_seeds(args.eval_maps, EVAL_SEED + 1000 * args.seed, training_seeds(dataset))
    policies = {
        "Trajectory Transformer (goal mode, map)": agent,
        "scripted expert": MiniGridGoalExpert(env),
        "goal-conditioned BC (no map)": GoalBCPolicy(bc),
        f"goal-conditioned BC ({args.view} map)": GoalBCPolicy(map_bc, sees_map=True),
    }
    summary, paths = {}, {}
    print(f"\ngoal reached on {len(seeds)} held-out maps (reset seeds {seeds[0]}...{seeds[-1]}), seed {args.seed}:")
    for name, policy in policies.items():
        tick = time.perf_counter()
        runs = [rollout(policy, env, seed) for seed in seeds]
        rate = float(np.mean([run[0] for run in runs]))
        steps = [len(path) - 1 for success, path, _, _ in runs if success]
        summary[name] = {
            "success_rate": rate,
            "mean_steps_to_goal": float(np.mean(steps)) if steps else float("nan"),
            "seconds": time.perf_counter() - tick,
        }
        paths[name] = runs
        print(f"{name:<42} {100 * rate:>5.0f}%  ({summary[name]['mean_steps_to_goal']:.1f} steps when reached)")

    fig, axes = plt.subplots(3, 3, figsize=(9, 9))
    tt_name = "Trajectory Transformer (goal mode, map)"
    shown = zip(axes.flat, seeds, paths[tt_name], strict=False)  # the first nine held-out maps
    for ax, seed, (success, path, grid, goal) in shown:
        draw(ax, grid, path, goal, success)
        ax.set_title(f"map {seed}: {'reached' if success else 'missed'}", fontsize=8)
    for ax in axes.flat[len(seeds) :]:
        ax.axis("off")
    rate = summary[tt_name]["success_rate"]
    fig.suptitle(
        f"Trajectory Transformer on held-out MultiRoom-N4-S5 maps (seed {args.seed}): {100 * rate:.0f}% reached"
    )
    fig.tight_layout()
    figure = args.out / "minigrid_goal_paths.png"
    fig.savefig(figure, dpi=110)
    plt.close(fig)
    total = time.perf_counter() - start
    report = {"seed": args.seed, "held_out_seeds": seeds, "args": {k: str(v) for k, v in vars(args).items()}}
    report |= {"results": summary, "total_seconds": total}
    (args.out / "results.json").write_text(json.dumps(report, indent=2))
    print(f"\nfigure {figure}\nresults {args.out / 'results.json'}\ntotal time {total / 60:.1f} min")
    return summary


if __name__ == "__main__":
    main()
