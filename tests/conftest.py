"""Shared fixtures: small in-memory datasets, a tiny trained agent and a tiny four-rooms dataset, all offline."""

from __future__ import annotations

import os
from collections.abc import Iterator

import gymnasium as gym
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # Minari/Hugging Face downloads must fail fast in tests

from helpers import ENV_ID, pendulum_episodes, tiny_config  # noqa: E402

from tt_agents import TTAgent  # noqa: E402
from tt_agents.data_making.four_rooms import make_four_rooms_dataset  # noqa: E402


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


@pytest.fixture(scope="module")
def four_rooms_dataset(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Eight four-rooms expert episodes recorded as a Minari dataset in a temporary directory."""
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(tmp_path_factory.mktemp("minari"))
    try:
        yield make_four_rooms_dataset(8, seed=3, dataset_id="tt-agents-test/fourrooms/expert-v0", show_progress=False)
    finally:
        if old is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test (tiny networks run fastest so; the 0.1.0 fixtures were recorded so)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
