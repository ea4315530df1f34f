"""Q-function adapters: numpy callables and SB3 critics, scoring (obs, act) pairs in environment units."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import SAC

from tt_agents.qfunctions import NumpyQFunction, SB3CriticQFunction, as_q_function


def test_numpy_callable_is_wrapped_and_shapes_checked() -> None:
    q = NumpyQFunction(lambda obs, act: obs.sum(1) + act[:, 0])
    values = q(torch.ones(3, 2), torch.full((3, 1), 0.5))
    torch.testing.assert_close(values, torch.full((3,), 2.5))
    with pytest.raises(ValueError, match="shape"):
        NumpyQFunction(lambda obs, act: np.zeros((3, 2)))(torch.ones(3, 2), torch.ones(3, 1))


def test_sb3_critic_sees_actions_rescaled_to_its_range() -> None:
    env = gym.make("Pendulum-v1")  # actions in [-2, 2]
    model = SAC("MlpPolicy", env, policy_kwargs={"net_arch": [8, 8]}, seed=0, device="cpu")
    q = as_q_function(model)
    assert isinstance(q, SB3CriticQFunction)
    obs = torch.zeros(4, 3)
    actions = torch.tensor([[-2.0], [0.0], [1.0], [2.0]])
    with torch.no_grad():
        expected = torch.min(*model.critic(obs, actions / 2.0)).reshape(-1)
    torch.testing.assert_close(q(obs, actions), expected)


def test_something_that_is_no_q_function_is_refused() -> None:
    with pytest.raises(TypeError, match="Q-function"):
        as_q_function(42)
