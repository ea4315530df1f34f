"""The baselines' networks: MLPs with observation and action scaling (nanoGPT-sized building blocks)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


def mlp(in_dim: int, out_dim: int, hidden: Sequence[int]) -> nn.Sequential:
    """Linear layers with ReLU between them: ``in_dim -> hidden... -> out_dim``."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class Normalizer(nn.Module):
    """``(x - mean) / std`` with buffers (identity until :meth:`fit` is called)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, x: np.ndarray) -> None:
        """Set the statistics from data ``x`` (N, dim); a constant column keeps std 1."""
        std = x.std(0)
        self.mean.copy_(torch.as_tensor(x.mean(0)))
        self.std.copy_(torch.as_tensor(np.where(std < 1e-6, 1.0, std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ActionScaler(nn.Module):
    """Maps the action box to ``[-1, 1]`` (``normalize``) and back (``unnormalize``)."""

    def __init__(self, low: np.ndarray, high: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32))

    def normalize(self, action: torch.Tensor) -> torch.Tensor:
        return (2.0 * (action - self.low) / (self.high - self.low) - 1.0).clamp(-1.0, 1.0)

    def unnormalize(self, action: torch.Tensor) -> torch.Tensor:
        return self.low + 0.5 * (action.clamp(-1.0, 1.0) + 1.0) * (self.high - self.low)


class SquashedPolicy(nn.Module):
    """Deterministic policy: normalizer → MLP → tanh → rescaled to the action bounds."""

    def __init__(self, observation_dim: int, low: np.ndarray, high: np.ndarray, hidden: Sequence[int]) -> None:
        super().__init__()
        self.normalizer = Normalizer(observation_dim)
        self.net = mlp(observation_dim, len(low), hidden)
        self.scaler = ActionScaler(low, high)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """(B, O) → (B, A) actions inside the bounds."""
        return self.scaler.unnormalize(torch.tanh(self.net(self.normalizer(observations))))


class CategoricalPolicy(nn.Module):
    """A policy over ``n`` discrete actions: normalizer → MLP → one logit per action."""

    def __init__(self, observation_dim: int, n_actions: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.normalizer = Normalizer(observation_dim)
        self.net = mlp(observation_dim, n_actions, hidden)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """(B, O) → (B, n) logits."""
        return self.net(self.normalizer(observations))


class TwinQ(nn.Module):
    """Two independent Q networks on ``[normalized observation, action]``."""

    def __init__(self, observation_dim: int, action_dim: int, hidden: Sequence[int], normalizer: Normalizer) -> None:
        super().__init__()
        self.normalizer = normalizer
        self.q1 = mlp(observation_dim + action_dim, 1, hidden)
        self.q2 = mlp(observation_dim + action_dim, 1, hidden)

    def forward(self, observations: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, O), (B, A) → two (B,) estimates."""
        x = torch.cat([self.normalizer(observations), actions], dim=-1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


class ValueNetwork(nn.Module):
    """State value ``V(s)``."""

    def __init__(self, observation_dim: int, hidden: Sequence[int], normalizer: Normalizer) -> None:
        super().__init__()
        self.normalizer = normalizer
        self.net = mlp(observation_dim, 1, hidden)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """(B, O) → (B,)."""
        return self.net(self.normalizer(observations)).squeeze(-1)


class GaussianActor(nn.Module):
    """IQL's policy: Gaussian over normalized actions with mean ``tanh(MLP(s))`` and a state-independent
    log-std (clipped to [-5, 2]), as in the authors' locomotion configuration. Acting uses the mean."""

    def __init__(self, observation_dim: int, action_dim: int, hidden: Sequence[int], normalizer: Normalizer) -> None:
        super().__init__()
        self.normalizer = normalizer
        self.net = mlp(observation_dim, action_dim, hidden)
        self.log_std = nn.Parameter(torch.zeros(action_dim))

    def forward(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, O) → mean (B, A) in [-1, 1] and std (A,)."""
        mean = torch.tanh(self.net(self.normalizer(observations)))
        return mean, self.log_std.clamp(-5.0, 2.0).exp()

    def log_prob(self, observations: torch.Tensor, normalized_actions: torch.Tensor) -> torch.Tensor:
        """(B,) log-density of ``normalized_actions`` (B, A)."""
        mean, std = self(observations)
        return torch.distributions.Normal(mean, std).log_prob(normalized_actions).sum(-1)


class CategoricalActor(nn.Module):
    """IQL's policy over ``n`` discrete actions: a softmax over ``MLP(s)`` logits, reading observations through
    the critic's shared normalizer. Acting deterministically takes the most likely action."""

    def __init__(self, observation_dim: int, n_actions: int, hidden: Sequence[int], normalizer: Normalizer) -> None:
        super().__init__()
        self.normalizer = normalizer
        self.net = mlp(observation_dim, n_actions, hidden)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """(B, O) → (B, n) logits."""
        return self.net(self.normalizer(observations))

    def log_prob(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(B,) log-probability of ``actions`` (B, 1), the categories."""
        log_probs = torch.log_softmax(self(observations), dim=-1)  # (B, n)
        return log_probs.gather(-1, actions.long()).squeeze(-1)
