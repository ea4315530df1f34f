"""Offline RL on a Discrete task: the Trajectory Transformer finds FrozenLake's goal in data of random moves.

1. record random-action episodes of the 4 x 4 FrozenLake (not slippery by default) as a local Minari dataset:
   about 2% of them reach the goal;
2. train the Transformer on them (each state is one token holding the cell's number, each action one token
   holding the move), with ``termination_penalty=None``: reaching the goal ends the episode, so the paper's
   penalty for terminal steps (made for locomotion, where termination is a fall) would make the goal as bad as
   a hole;
3. evaluate reward-mode planning, imitation and behaviour cloning (which read the cell one-hot) from the start.

    python examples/frozen_lake.py                 # about 2 minutes on a 2-core CPU
    python examples/frozen_lake.py --slippery      # the stochastic lake (a move goes sideways 2 times in 3)
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

from tt_agents import TTAgent, cpu_preset, evaluate
from tt_agents.baselines import BCAgent
from tt_agents.data_making import record_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slippery", action="store_true", help="the stochastic lake")
    parser.add_argument("--data-episodes", type=int, default=2000, help="random-action episodes recorded")
    parser.add_argument("--steps", type=int, default=1500, help="Transformer training steps")
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    lake = {"is_slippery": args.slippery}
    name = "slippery" if args.slippery else "still"
    dataset = record_dataset(
        gym.make("FrozenLake-v1", **lake),
        None,  # uniformly random actions
        f"tt-agents/frozenlake-{name}/random-v0",
        n_episodes=args.data_episodes,
        seed=args.seed,
        overwrite=True,
        show_progress=False,
    )
    data_success = np.mean([episode.rewards.sum() for episode in dataset.iterate_episodes()])
    print(f"{dataset.id}: {dataset.total_episodes} episodes, {data_success:.1%} of them reach the goal")

    env = gym.make("FrozenLake-v1", **lake)
    config = cpu_preset()
    config.data.termination_penalty = None  # termination is the goal here
    agent = TTAgent(env.observation_space, env.action_space, config=config, device="auto")
    agent.fit(dataset, n_steps=args.steps, seed=args.seed)
    bc = BCAgent(env.observation_space, env.action_space, seed=args.seed, device="auto")
    bc.fit(dataset, 5000, seed=args.seed)

    def success(policy) -> str:
        result = evaluate(
            policy,
            "FrozenLake-v1",
            args.episodes,
            n_envs=10,
            seed=args.seed,
            use_rewards=True,
            show_progress=False,
            **lake,
        )
        steps = np.mean(result.lengths)
        return f"{np.mean(result.returns):.0%} of {args.episodes} episodes reach the goal, in {steps:.1f} steps"

    print(f"TT, reward mode: {success(agent)}")
    agent.configure_planner(mode="imitation")
    print(f"TT, imitation:   {success(agent)}")
    print(f"BC:              {success(bc)}")


if __name__ == "__main__":
    main()
