"""Q-function adapters: IQL's critic, numpy callables and SB3 critics, scoring (obs, act) pairs in environment
units."""

from __future__ import annotations

from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import SAC

from tt_agents.qfunctions import IQLQFunction, NumpyQFunction, SB3CriticQFunction, as_q_function


def test_iql_adapter_needs_only_a_twin_critic_and_follows_its_reward_scale() -> None:
    def target_critic(obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert obs.dtype == act.dtype == torch.float32 and obs.shape == (3, 2) and act.shape == (3, 1)
        return obs.sum(1) + act[:, 0], obs.sum(1) - act[:, 0]

    critic = SimpleNamespace(
        target_critic=target_critic, reward_scale=2.0, observation_dim=2, action_dim=1, device=torch.device("cpu")
    )
    q = IQLQFunction(critic)
    obs, act = torch.ones(3, 2, dtype=torch.float64), torch.tensor([[1.0], [-1.0], [0.0]])
    torch.testing.assert_close(q(obs, act), torch.tensor([0.5, 0.5, 1.0]))  # min of the two, / reward_scale
    critic.reward_scale = 1.0  # the adapter reads the live scale (it changes when IQL is fitted)
    torch.testing.assert_close(q(obs, act), torch.tensor([1.0, 1.0, 2.0]))


def test_an_object_with_q_function_wins_over_its_critic() -> None:
    """An IQL agent has ``critic`` and ``action_space`` too; its own ``q_function()`` must be used."""
    own = NumpyQFunction(lambda obs, act: obs.sum(1))
    iql_like = SimpleNamespace(critic=object(), action_space=None, q_function=lambda: own)
    assert as_q_function(iql_like) is own


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
