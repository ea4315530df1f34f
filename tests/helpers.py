"""Helpers shared by the tests: small in-memory datasets and tiny configurations."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from tt_agents import AgentConfig, ModelConfig, PlannerConfig, TrainConfig
from tt_agents.config import DataConfig, TokenizerConfig
from tt_agents.data_making import inverted_pendulum_policy

ENV_ID = "InvertedPendulum-v5"


def pendulum_episodes(n_episodes: int = 8, steps: int = 120, noise: float = 0.3, seed: int = 0) -> list[dict]:
    """Episodes of the scripted InvertedPendulum controller with action noise, as plain dicts."""
    env = gym.make(ENV_ID, max_episode_steps=steps)
    policy = inverted_pendulum_policy(noise=noise, seed=seed)
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
                "actions": np.array(actions),
                "rewards": np.array(rewards),
                "terminated": bool(terminated),
            }
        )
    env.close()
    return episodes


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
    env = gym.make(CARTPOLE_ID, max_episode_steps=100)
    rng = np.random.default_rng(seed)
    episodes = []
    for i in range(n_episodes):
        obs, _ = env.reset(seed=seed + i)
        observations, actions, rewards = [obs], [], []
        terminated = truncated = False
        while not (terminated or truncated):
            action = int(obs[2] + 0.5 * obs[3] > 0) if rng.random() > noise else int(rng.integers(2))
            obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(reward)
        episodes.append(
            {
                "observations": np.array(observations),
                "actions": np.array(actions, dtype=np.int64),  # (T,): a Discrete space's actions
                "rewards": np.array(rewards),
                "terminated": bool(terminated),
            }
        )
    env.close()
    return episodes
