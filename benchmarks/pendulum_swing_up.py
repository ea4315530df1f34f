"""Imitating a swing-up expert on Pendulum-v1, an environment the package was never tuned on: TT against BC.

A scripted expert (energy pumping with full torque until the pendulum is near the top, then a PD balance; Gaussian
action noise 0.3) records N episodes of 200 steps; TT with the cpu preset as the README trains it (imitation mode,
and reward mode from the same model) and BC learn from them, for each training seed, and are evaluated on ten
episodes from the benchmark's evaluation seeds (starts the data never had). Written to
``benchmarks/results/pendulum_swing_up.md``.

    python benchmarks/pendulum_swing_up.py                                   # 30 and 100 episodes, 2 seeds
    python benchmarks/pendulum_swing_up.py --data-episodes 30 --seeds 1      # a quick look
    python benchmarks/pendulum_swing_up.py --place-frequencies 8 --out benchmarks/results/pendulum_swing_up_place8.md
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from common import evaluation_seed
from reports import write_markdown_with_rows
from rich.console import Console

from tt_agents import TTAgent, cpu_preset, evaluate
from tt_agents.baselines import BCAgent

ENV_ID = "Pendulum-v1"
RESULTS = Path(__file__).parent / "results" / "pendulum_swing_up.md"
EXPERT_NOISE = 0.3
BC_STEPS = 5000


def expert_action(observation: np.ndarray, noise: float = 0.0, rng: np.random.Generator | None = None) -> np.ndarray:
    """Full torque along the swing while the pendulum has too little energy to reach the top (against it when it
    has too much), and a PD law on the angle once it is within about 25 degrees of the top."""
    cos, sin, velocity = (float(x) for x in observation)
    angle = np.arctan2(sin, cos)
    if cos > 0.9:
        torque = -(10.0 * angle + 2.0 * velocity)
    else:  # energy relative to resting at the top, for Pendulum-v1's dynamics (g = 10, m = l = 1)
        energy = velocity**2 / 6.0 + 5.0 * (cos - 1.0)
        torque = 2.0 * np.sign(velocity if abs(velocity) > 1e-2 else 1.0) * (1.0 if energy < 0 else -1.0)
    if noise:
        torque += noise * (rng or np.random.default_rng()).standard_normal()
    return np.clip(np.array([torque], dtype=np.float32), -2.0, 2.0)


def expert_episodes(n_episodes: int, seed: int = 0) -> list[dict]:
    """``n_episodes`` of the noisy expert, episode ``i`` reset with ``seed + i``."""
    env = gym.make(ENV_ID)
    rng = np.random.default_rng(seed)
    episodes = []
    for i in range(n_episodes):
        observation, _ = env.reset(seed=seed + i)
        observations, actions, rewards = [observation], [], []
        done = False
        while not done:
            action = expert_action(observation, EXPERT_NOISE, rng)
            observation, reward, terminated, truncated, _ = env.step(action)
            observations.append(observation)
            actions.append(action)
            rewards.append(reward)
            done = terminated or truncated
        episodes.append(
            {"observations": np.array(observations), "actions": np.array(actions), "rewards": np.array(rewards)}
        )
    return episodes


class ExpertPolicy:
    """The noise-free expert with SB3's ``predict``, evaluated like the learners."""

    def __init__(self) -> None:
        env = gym.make(ENV_ID)
        self.observation_space, self.action_space = env.observation_space, env.action_space

    def predict(
        self, observation: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray, Any]:
        return np.stack([expert_action(o) for o in np.atleast_2d(observation)]), state


def trained(
    method: str, episodes: list[dict], seed: int, folder: Path, place_frequencies: int | None = None
) -> tuple[Any, float | None]:
    """The method's agent for ``seed`` (a TT agent is loaded from ``folder`` when an earlier run saved it), and its
    training seconds (None when loaded). ``place_frequencies``: the TT model's (None: the preset's)."""
    env = gym.make(ENV_ID)
    clock = time.perf_counter()
    if method == "bc":
        agent = BCAgent(env.observation_space, env.action_space, seed=seed, device="auto")
        agent.fit(episodes, BC_STEPS, seed=seed, show_progress=False)
        return agent, time.perf_counter() - clock
    if (folder / "config.json").exists():
        return TTAgent.from_pretrained(folder, device="auto"), None
    config = cpu_preset()
    config.train = replace(config.train, seed=seed)
    if place_frequencies is not None:
        config.model = replace(config.model, place_frequencies=place_frequencies)
    agent = TTAgent(env.observation_space, env.action_space, config=config, device="auto")
    agent.fit(episodes, show_progress=False)
    agent.save_pretrained(folder)
    return agent, time.perf_counter() - clock


def main() -> None:
    """Train and evaluate every method per data size and seed, print and write a table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=2, help="training seeds 0 .. N-1")
    parser.add_argument("--data-episodes", type=int, nargs="+", default=[30, 100])
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes per seed")
    parser.add_argument("--workdir", type=Path, default=Path("runs/pendulum_swing_up"))
    parser.add_argument(
        "--place-frequencies",
        type=int,
        help="TT's ModelConfig.place_frequencies (default: the cpu preset's); agents go to their own folders",
    )
    parser.add_argument(
        "--average-contexts",
        action="store_true",
        help="imitation mode with PlannerConfig.average_contexts (the trained agents are the same)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="the results file")
    parser.add_argument("--no-write", action="store_true", help="print only; do not update the results file")
    args = parser.parse_args()
    console = Console()
    rows = []
    started = time.perf_counter()
    place_suffix = "" if args.place_frequencies is None else f"_place{args.place_frequencies}"
    for n_data in args.data_episodes:
        episodes = expert_episodes(n_data)
        data_return = float(np.mean([e["rewards"].sum() for e in episodes]))
        for seed in range(args.seeds):
            start = evaluation_seed(seed)
            expert = evaluate(ExpertPolicy(), ENV_ID, args.episodes, 5, seed=start, show_progress=False)
            results = {"expert (noise-free)": (expert, None)}
            for method in ("tt", "bc"):
                folder = args.workdir / f"data{n_data}_seed{seed}{place_suffix}"
                agent, train_s = trained(method, episodes, seed, folder, args.place_frequencies)
                modes = ("imitation", "reward") if method == "tt" else (None,)
                for mode in modes:
                    if mode is not None:
                        agent.configure_planner(mode=mode, average_contexts=args.average_contexts)
                    result = evaluate(agent, ENV_ID, args.episodes, 5, seed=start, show_progress=False)
                    results[f"TT, {mode} mode" if mode else "BC"] = (result, train_s)
            for name, (result, train_s) in results.items():
                row = {
                    "data_episodes": n_data,
                    "data_return": data_return,
                    "method": name,
                    "seed": seed,
                    "mean_return": result.mean_return,
                    "returns": [round(float(r), 1) for r in result.returns],
                    "train_s": train_s,
                }
                rows.append(row)
                console.print(f"data {n_data}, seed {seed}, {name}: {result.mean_return:.1f}, returns {row['returns']}")
    total = time.perf_counter() - started
    console.print(f"total {total / 60:.1f} min")
    if not args.no_write:
        write_results(rows, args, total)


def write_results(rows: list[dict], args: argparse.Namespace, total_s: float) -> None:
    """The table, the command that made it and the raw rows, in ``args.out``."""
    place = args.place_frequencies
    place_option = "" if place is None else f" --place-frequencies {place}"
    options = place_option + (" --average-contexts" if args.average_contexts else "")
    options += "" if args.out == RESULTS else f" --out {args.out}"
    model = "" if place is None else f" with `ModelConfig.place_frequencies={place}`"
    model += " (imitation with `PlannerConfig.average_contexts=True`)" if args.average_contexts else ""
    lines = [
        "# Imitating a Pendulum-v1 swing-up expert (cpu preset), an environment never tuned on",
        "",
        f"Command: `python benchmarks/pendulum_swing_up.py --seeds {args.seeds} --data-episodes "
        f"{' '.join(map(str, args.data_episodes))} --episodes {args.episodes}{options}` "
        f"({total_s / 60:.1f} min on the machine that ran it). Data: the script's scripted expert with action noise "
        f"{EXPERT_NOISE}, 200-step episodes. TT: `cpu_preset()` as the README trains it{model}, planning in "
        f"imitation and in reward mode; BC {BC_STEPS} steps. Evaluation from the benchmark's evaluation seeds "
        "(starts the data never had).",
        "",
        "| data episodes (return) | method | seed | mean return | returns |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['data_episodes']} ({r['data_return']:.0f}) | {r['method']} | {r['seed']} | {r['mean_return']:.1f} "
            f"| {' '.join(f'{x:.0f}' for x in r['returns'])} |"
        )
    write_markdown_with_rows(args.out, lines, rows)


if __name__ == "__main__":
    main()
