"""Imitating an expert on CartPole-v1 from starts the data never had: the cpu preset's embeddings and bins.

Twenty 500-step episodes of a scripted expert (a linear rule on the pole's angle and angular velocity), the
cpu preset as the README trains it, ten evaluation episodes per training seed from the benchmark's evaluation
seeds. The question: does TT's imitation last the full 500 steps, as BC's does? Variants: the cpu preset (uniform
bins, ordinal embedding), the same with token embeddings alone (the paper's network), quantile bins with and
without the ordinal embedding, and the preset with its bins embedded by their place (``place_frequencies=8``).
Written to ``benchmarks/results/cartpole_expert.md``.

    python benchmarks/cartpole_expert.py                 # 2 training seeds, every variant
    python benchmarks/cartpole_expert.py --seeds 1 --variants preset --episodes 5   # a quick look
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
from common import evaluation_seed
from reports import write_markdown_with_rows
from rich.console import Console

from tt_agents import AgentConfig, TTAgent, cpu_preset, evaluate
from tt_agents.baselines import BCAgent

ENV_ID = "CartPole-v1"
RESULTS = Path(__file__).parent / "results" / "cartpole_expert.md"
VARIANTS = {
    "preset": ("uniform", True, 0),
    "uniform-tokens": ("uniform", False, 0),
    "quantile": ("quantile", True, 0),
    "quantile-tokens": ("quantile", False, 0),
    "place": ("uniform", True, 8),
}
"""Variant name: (bin strategy, ordinal embedding, place frequencies)."""


def expert(observation: np.ndarray) -> int:
    """Push towards where the pole falls, a little against the cart's drift."""
    return int(observation[2] + 0.5 * observation[3] + 0.05 * observation[1] + 0.01 * observation[0] > 0)


def expert_episodes(n_episodes: int, seed: int) -> list[dict]:
    """``n_episodes`` of the expert, episode ``i`` reset with ``seed + i``."""
    env = gym.make(ENV_ID)
    episodes = []
    for i in range(n_episodes):
        observation, _ = env.reset(seed=seed + i)
        observations, actions, rewards = [observation], [], []
        done = terminated = False
        while not done:
            action = expert(observation)
            observation, reward, terminated, truncated, _ = env.step(action)
            observations.append(observation)
            actions.append(action)
            rewards.append(reward)
            done = terminated or truncated
        episodes.append(
            {
                "observations": np.array(observations),
                "actions": np.array(actions),
                "rewards": np.array(rewards),
                "terminated": terminated,
            }
        )
    return episodes


def variant_config(variant: str, seed: int) -> AgentConfig:
    """The cpu preset with the variant's bins and embeddings, trained with ``seed``."""
    strategy, ordinal, place_frequencies = VARIANTS[variant]
    config = cpu_preset()
    config.tokenizer = replace(config.tokenizer, strategy=strategy)
    config.model = replace(config.model, ordinal_embedding=ordinal, place_frequencies=place_frequencies)
    config.train = replace(config.train, seed=seed)
    return config


def main() -> None:
    """Train each variant per seed (or load it from ``--workdir``), evaluate imitation, print and write a table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=2, help="training seeds 0 .. N-1")
    parser.add_argument("--variants", nargs="+", choices=[*VARIANTS, "bc"], default=[*VARIANTS, "bc"])
    parser.add_argument("--data-episodes", type=int, default=20)
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes per seed")
    parser.add_argument("--workdir", type=Path, default=Path("runs/cartpole_expert"))
    parser.add_argument("--no-write", action="store_true", help="print only; do not update the results file")
    args = parser.parse_args()
    console = Console()
    episodes = expert_episodes(args.data_episodes, seed=0)
    env = gym.make(ENV_ID)
    rows = []
    started = time.perf_counter()
    for variant in args.variants:
        for seed in range(args.seeds):
            folder = args.workdir / f"{variant}_seed{seed}"
            clock = time.perf_counter()
            if variant == "bc":
                agent = BCAgent(env.observation_space, env.action_space, seed=seed, device="auto")
                agent.fit(episodes, 5000, seed=seed, show_progress=False)
            elif (folder / "config.json").exists():  # trained by an earlier run
                agent = TTAgent.from_pretrained(folder, device="auto")
                clock = None
            else:
                config = variant_config(variant, seed)
                agent = TTAgent(env.observation_space, env.action_space, config=config, device="auto")
                agent.fit(episodes, show_progress=False)
                agent.save_pretrained(folder)
            if isinstance(agent, TTAgent):
                agent.configure_planner(mode="imitation")
            train_s = None if clock is None else time.perf_counter() - clock
            result = evaluate(
                agent, ENV_ID, n_episodes=args.episodes, n_envs=5, seed=evaluation_seed(seed), show_progress=False
            )
            lengths = sorted(int(r) for r in result.returns)
            rows.append(
                {
                    "variant": variant,
                    "seed": seed,
                    "mean_return": result.mean_return,
                    "returns": lengths,
                    "train_s": train_s,
                }
            )
            console.print(f"{variant} seed {seed}: {result.mean_return:.1f}, returns {lengths}")
    total = time.perf_counter() - started
    console.print(f"total {total / 60:.1f} min")
    if not args.no_write:
        write_results(rows, args, total)


def write_results(rows: list[dict], args: argparse.Namespace, total_s: float) -> None:
    """The table, the command that made it and the raw rows, in ``RESULTS``."""
    lines = [
        "# Imitating a CartPole expert from unseen starts (cpu preset)",
        "",
        f"Command: `python benchmarks/cartpole_expert.py --seeds {args.seeds} --variants {' '.join(args.variants)} "
        f"--data-episodes {args.data_episodes} --episodes {args.episodes}` ({total_s / 60:.1f} min on the machine "
        "that ran it). Data: the script's scripted expert, every episode 500 steps. TT in imitation mode; BC 5000 "
        "steps. Returns are episode lengths (500 is the limit).",
        "",
        "| variant | bins | ordinal embedding | place frequencies | seed | mean return | returns |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        strategy, ordinal, place_frequencies = VARIANTS.get(r["variant"], ("-", "-", "-"))
        lines.append(
            f"| {r['variant']} | {strategy} | {ordinal} | {place_frequencies} | {r['seed']} | {r['mean_return']:.1f} | "
            f"{' '.join(map(str, r['returns']))} |"
        )
    write_markdown_with_rows(RESULTS, lines, rows)


if __name__ == "__main__":
    main()
