"""Shared fixtures: small in-memory datasets and a tiny trained agent, all offline."""

from __future__ import annotations

import os

import gymnasium as gym
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # Minari/Hugging Face downloads must fail fast in tests

from helpers import ENV_ID, pendulum_episodes, tiny_config  # noqa: E402

from tt_agents import TTAgent  # noqa: E402


@pytest.fixture(scope="session")
def episodes() -> list[dict]:
    return pendulum_episodes()


@pytest.fixture(scope="session")
def env_spaces() -> tuple[gym.Space, gym.Space]:
    env = gym.make(ENV_ID)
    return env.observation_space, env.action_space


@pytest.fixture(scope="session")
def trained_agent(episodes, env_spaces) -> TTAgent:
    """A tiny agent trained for a few dozen steps: enough to exercise every code path, not to act well."""
    agent = TTAgent(*env_spaces, config=tiny_config(), device="cpu")
    return agent.fit(episodes, show_progress=False)
