"""Q-functions that score the planner's leaves in ``q`` mode.

Anything with the :class:`QFunction` signature works: ``q(observations (R, O), actions (R, A)) -> (R,)`` on
torch tensors, actions in the environment's units. Adapters here wrap IQL's target critic (what
:meth:`tt_agents.baselines.IQLAgent.q_function` returns), an SB3 SAC/TD3 critic, or a plain numpy callable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch


class QFunction(Protocol):
    """``q(observations (R, O), actions (R, A)) -> values (R,)``, torch tensors on the planner's device."""

    def __call__(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor: ...


class TwinQCritic(Protocol):
    """What :class:`IQLQFunction` reads from an IQL agent (:class:`tt_agents.baselines.IQLAgent` is one)."""

    target_critic: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    """``(observations (B, O), actions (B, A)) -> (q1 (B,), q2 (B,))``, in the training reward scale."""
    reward_scale: float
    """The factor the training rewards were multiplied by."""
    observation_dim: int
    action_dim: int
    device: torch.device
    """Where the critic's weights live."""


class IQLQFunction:
    """``q(observations (R, O), actions (R, A)) -> (R,)``: min of IQL's twin target-Q networks, in the original
    reward scale, on the inputs' device (the networks run on the critic's device; tensors are moved as needed).

    It refers to the agent's live networks and reward scale, so it follows further training.
    """

    def __init__(self, iql: TwinQCritic) -> None:
        self.iql = iql

    @torch.no_grad()
    def __call__(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        iql = self.iql
        obs = observations.to(iql.device, torch.float32)
        to_network = getattr(iql, "network_observations", None)  # an IQLAgent's: Discrete categories one-hot
        if to_network is not None:
            obs = to_network(obs)
        obs = obs.reshape(-1, iql.observation_dim)  # (R, O)
        act = actions.to(iql.device, torch.float32).reshape(-1, iql.action_dim)  # (R, A)
        to_network_actions = getattr(iql, "network_actions", None)  # an IQLAgent's: Discrete categories one-hot
        if to_network_actions is not None:
            act = to_network_actions(act)
        q1, q2 = iql.target_critic(obs, act)  # (R,), (R,)
        return (torch.minimum(q1, q2) / iql.reward_scale).to(observations.device)


class NumpyQFunction:
    """Wraps ``fn(observations: ndarray (R, O), actions: ndarray (R, A)) -> ndarray (R,)`` as a QFunction."""

    def __init__(self, fn: Callable[[np.ndarray, np.ndarray], Any]) -> None:
        self.fn = fn

    def __call__(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        values = np.asarray(self.fn(observations.cpu().numpy(), actions.cpu().numpy()), dtype=np.float32)
        if values.shape not in ((len(observations),), (len(observations), 1)):
            raise ValueError(f"Q-function returned shape {values.shape} for {len(observations)} (obs, act) pairs")
        return torch.as_tensor(values.reshape(-1), device=observations.device)


class SB3CriticQFunction:
    """The critic of a Stable-Baselines3 SAC or TD3 model: the minimum over its Q-networks.

    SB3 critics take actions rescaled to [-1, 1]; this adapter rescales the planner's actions from the
    action space's bounds first. ``target=True`` uses the target critic.
    """

    def __init__(self, model: Any, target: bool = False) -> None:
        critic = getattr(model, "critic_target" if target else "critic", None)
        if critic is None:
            raise TypeError(f"{type(model).__name__} has no critic: use an SB3 SAC or TD3 model")
        space = model.action_space
        self.critic = critic
        self.low = torch.as_tensor(space.low, dtype=torch.float32)
        self.high = torch.as_tensor(space.high, dtype=torch.float32)

    @torch.no_grad()
    def __call__(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        device = next(self.critic.parameters()).device
        low, high = self.low.to(device), self.high.to(device)
        scaled = 2.0 * (actions.to(device, torch.float32) - low) / (high - low) - 1.0
        values = self.critic(observations.to(device, torch.float32), scaled)  # tuple of (R, 1)
        return torch.min(torch.cat(values, dim=1), dim=1).values.to(observations.device)


def as_q_function(q: Any) -> QFunction:
    """A QFunction from an object with ``q_function()`` (IQL), an SB3 SAC/TD3 model, or a callable.

    ``q_function()`` is asked first: an IQL agent also has a ``critic`` and an ``action_space``, but its critic
    takes actions in the environment's units and answers in the training reward scale.
    """
    if hasattr(q, "q_function") and callable(q.q_function):
        return q.q_function()
    if hasattr(q, "critic") and hasattr(q, "action_space"):
        return SB3CriticQFunction(q)
    if callable(q):
        return q
    raise TypeError(f"cannot use {type(q).__name__} as a Q-function: give a callable q(obs, act) -> values")
