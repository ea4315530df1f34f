"""From nothing to a Q-guided Trajectory Transformer reaching a PointMaze goal.

1. make a PointMaze dataset locally in the paper's AntMaze setting (``goal="fixed"``): a scripted waypoint
   controller with noise, sent to random goals, with the sparse reward relabelled for the maze's one fixed goal;
2. train the Transformer and, on the same data, IQL with its AntMaze settings, whose Q-function scores the
   planner's leaves (``fit(..., q_function="iql", iql_config=IQLConfig.antmaze())``, planner mode ``q``);
3. evaluate from random starts (an episode ends on reaching the goal) and print the success rate beside
   reward-mode planning;
4. save the agent (its Q-function is saved with it) and check the reloaded agent acts identically.

    python examples/q_guided_maze.py                      # U-maze, about 10 minutes on a 2-core CPU
    python examples/q_guided_maze.py --maze medium --steps 8000 --q-steps 30000

The full comparison (TT, TT+Q, IQL and BC over seeds, Medium and Large mazes) is ``benchmarks/mazes.py``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import minari
import numpy as np
from minari.storage import get_dataset_path

from tt_agents import TTAgent, cpu_preset, evaluate
from tt_agents.baselines import IQLConfig
from tt_agents.data_making import make_point_maze_dataset, point_maze_dataset_id
from tt_agents.envs.point_maze import point_maze_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--maze", default="umaze", help="umaze, medium or large")
    parser.add_argument("--steps", type=int, default=4000, help="Transformer training steps")
    parser.add_argument("--q-steps", type=int, default=15_000, help="IQL training steps")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes (random starts)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/q_guided_maze")
    args = parser.parse_args()

    dataset_id = point_maze_dataset_id(args.maze, goal="fixed")
    if get_dataset_path(dataset_id).exists():
        dataset = minari.load_dataset(dataset_id)
    else:  # made here (never downloaded): ~30 s for the U-maze
        dataset = make_point_maze_dataset(args.maze, goal="fixed", seed=args.seed)
    print(f"{dataset_id}: {dataset.total_episodes} episodes, {dataset.total_steps:,} steps")

    env = point_maze_env(args.maze, goal="fixed")
    config = cpu_preset()
    config.planner = replace(config.planner, mode="q")
    agent = TTAgent(env.observation_space, env.action_space, config=config)  # Dict observations, used whole
    agent.fit(
        dataset, args.steps, seed=args.seed, q_function="iql", q_steps=args.q_steps, iql_config=IQLConfig.antmaze()
    )

    results = {}
    for mode in ("q", "reward"):
        agent.configure_planner(mode=mode)
        n_envs = min(5, args.episodes)
        results[mode] = evaluate(agent, env.spec, args.episodes, n_envs, seed=args.seed, use_rewards=True)
        print(f"TT, {mode} mode: {results[mode].summary()}")
    agent.configure_planner(mode="q")
    path = agent.save_pretrained(args.out)

    loaded = TTAgent.from_pretrained(path)
    observation, _ = env.reset(seed=args.seed)
    for a in (agent, loaded):
        a.seed(args.seed)
        a.reset()
    same = all(np.array_equal(agent.act(observation), loaded.act(observation)) for _ in range(3))
    print(f"saved to {path}; the reloaded agent (with its IQL Q-function) acts identically: {same}")
    print(
        f"success rate: Q-guided {100 * results['q'].success_rate:.0f}%, "
        f"reward mode {100 * results['reward'].success_rate:.0f}% over {args.episodes} episodes (seed {args.seed})"
    )


if __name__ == "__main__":
    main()
