"""Helpers shared by the tests: small in-memory datasets and tiny configurations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from tt_agents import AgentConfig, ModelConfig, PlannerConfig, TrainConfig
from tt_agents.config import DataConfig, TokenizerConfig
from tt_agents.data_making import inverted_pendulum_policy

ENV_ID = "InvertedPendulum-v5"


def record_episodes(env: gym.Env, policy: Callable[[np.ndarray], Any], n_episodes: int, seed: int) -> list[dict]:
    """``n_episodes`` of ``policy`` in ``env`` (reset with seeds ``seed``, ``seed + 1``, ...), as plain dicts; the
    environment is closed after."""
    episodes = []
    for i in range(n_episodes):
        obs, _ = env.reset(seed=seed + i)
        observations, actions, rewards = [obs], [], []
        terminated = truncated = False
        while not (terminated or truncated):
            action = policy(obs)
            obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(reward)
        episodes.append(
            {
                "observations": np.array(observations),
                "actions": np.array(actions),  # (T, A) for Box actions; (T,) ints for a Discrete space
                "rewards": np.array(rewards),
                "terminated": bool(terminated),
            }
        )
    env.close()
    return episodes


def pendulum_episodes(n_episodes: int = 8, steps: int = 120, noise: float = 0.3, seed: int = 0) -> list[dict]:
    """Episodes of the scripted InvertedPendulum controller with action noise, as plain dicts."""
    env = gym.make(ENV_ID, max_episode_steps=steps)
    return record_episodes(env, inverted_pendulum_policy(noise=noise, seed=seed), n_episodes, seed)


EMBEDDINGS = ["table", "ordinal", "place"]
"""Token embeddings of the network tests: a table row per bin (the paper's), plus an ordinal direction, and
continuous bins embedded by their place (plus the ordinal direction)."""


def network_config(embedding: str, n_embd: int, sequence_length: int) -> ModelConfig:
    """A two-layer, two-head network with one of :data:`EMBEDDINGS`."""
    return ModelConfig(
        n_layer=2,
        n_head=2,
        n_embd=n_embd,
        sequence_length=sequence_length,
        ordinal_embedding=embedding != "table",
        place_frequencies=3 if embedding == "place" else 0,
    )


def tiny_config(n_steps: int = 60, **planner: object) -> AgentConfig:
    """A model and planner small enough for unit tests (seconds on a CPU)."""
    return AgentConfig(
        tokenizer=TokenizerConfig(n_bins=20),
        data=DataConfig(validation_fraction=0.2),
        model=ModelConfig(n_layer=1, n_head=2, n_embd=32, sequence_length=4),
        train=TrainConfig(
            n_steps=n_steps, batch_size=16, learning_rate=3e-3, warmup_steps=5, eval_every=20, eval_batches=2
        ),
        planner=PlannerConfig(
            **{"beam_width": 4, "n_expand": 2, "horizon": 2, "max_context_transitions": 2, **planner}
        ),
    )


CARTPOLE_ID = "CartPole-v1"


def cartpole_episodes(n_episodes: int = 12, noise: float = 0.2, seed: int = 0) -> list[dict]:
    """A scripted CartPole controller (push towards where the pole falls) with random actions mixed in."""
    rng = np.random.default_rng(seed)

    def policy(obs: np.ndarray) -> int:
        return int(obs[2] + 0.5 * obs[3] > 0) if rng.random() > noise else int(rng.integers(2))

    return record_episodes(gym.make(CARTPOLE_ID, max_episode_steps=100), policy, n_episodes, seed)


FROZEN_LAKE_ID = "FrozenLake-v1"
"""Discrete observations (16 cells of a 4 x 4 lake) and Discrete actions; made with ``is_slippery=False``."""


def frozen_lake_episodes(n_episodes: int = 40, noise: float = 0.25, seed: int = 0) -> list[dict]:
    """Shortest-path walks to the goal of the non-slippery 4 x 4 lake with random actions mixed in (some fall into a
    hole): observations are the cells' numbers, shape (T + 1,)."""
    env = gym.make(FROZEN_LAKE_ID, is_slippery=False)
    table = env.unwrapped.P  # cell -> action -> [(probability, next cell, reward, terminated)]
    distance = {15: 0}
    while len(distance) < 16:
        reached = {
            cell: distance[nxt] + 1
            for cell, moves in table.items()
            for _, nxt, _, done in (m[0] for m in moves.values())
            if cell not in distance and nxt in distance and (not done or nxt == 15)
        }
        if not reached:
            break
        distance.update(reached)
    rng = np.random.default_rng(seed)

    def policy(cell: int) -> int:
        if rng.random() < noise or cell not in distance:
            return int(rng.integers(4))
        return min(range(4), key=lambda a: distance.get(table[cell][a][0][1], 99))

    return record_episodes(env, policy, n_episodes, seed)
