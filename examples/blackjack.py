"""Offline RL on a Tuple observation: from random play, the Trajectory Transformer learns when to hit in Blackjack.

1. record uniformly random play of gymnasium's Blackjack-v1 as a local Minari dataset (its observation is a
   ``Tuple(Discrete(32), Discrete(11), Discrete(2))``: the player's sum, the dealer's card, a usable ace);
2. train the Transformer on it: each entry of the Tuple is one categorical token (not gymnasium's 45-wide
   one-hot), and ``termination_penalty=None``, since every game ends by terminating (the paper's penalty for
   terminal steps is made for locomotion, where termination is a fall);
3. evaluate reward-mode planning and imitation against the data's own play and a fixed rule (hit below 17), on the
   same games.

    python examples/blackjack.py               # a few minutes on a 2-core CPU
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

from tt_agents import TTAgent, cpu_preset, evaluate
from tt_agents.data_making import record_dataset

ENV_ID = "Blackjack-v1"


def hit_below_17(observation: tuple[int, int, int]) -> int:
    return int(observation[0] < 17)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-episodes", type=int, default=5000, help="games of random play recorded")
    parser.add_argument("--episodes", type=int, default=2000, help="evaluation games")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    dataset = record_dataset(
        ENV_ID,
        None,  # uniformly random actions: hit or stick, whatever the hand
        "tt-agents/blackjack/random-v0",
        n_episodes=args.data_episodes,
        seed=args.seed,
        overwrite=True,
        show_progress=False,
    )
    data_return = np.mean([episode.rewards.sum() for episode in dataset.iterate_episodes()])
    print(f"{dataset.id}: {dataset.total_episodes} games, mean return {data_return:+.3f}")

    env = gym.make(ENV_ID)
    config = cpu_preset()
    config.data.termination_penalty = None  # every game terminates: the end is not a fall
    agent = TTAgent(env.observation_space, env.action_space, config=config, device="auto")
    agent.fit(dataset, seed=args.seed)

    def mean_return(policy) -> str:
        result = evaluate(
            policy, ENV_ID, args.episodes, n_envs=20, seed=10_000 + args.seed, use_rewards=True, show_progress=False
        )
        return f"{np.mean(result.returns):+.3f} ± {np.std(result.returns) / np.sqrt(args.episodes):.3f}"

    class Rule:
        def predict(self, observation, state=None, episode_start=None, deterministic=True):
            return np.array([hit_below_17(o) for o in zip(*observation, strict=True)]), state

    print(f"TT, reward mode:   {mean_return(agent)}")
    agent.configure_planner(mode="imitation")
    print(f"TT, imitation:     {mean_return(agent)}")
    print(f"rule (hit < 17):   {mean_return(Rule())}")
    print(f"the data (random): {data_return:+.3f}")


if __name__ == "__main__":
    main()
