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
