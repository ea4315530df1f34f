"""A PETS-style probabilistic ensemble (Chua et al., 2018): the single-step dynamics model the paper's Figure 3
compares the Trajectory Transformer with.

Each of ``n_members`` MLPs predicts a diagonal Gaussian over the change of the observation and the reward given
(observation, action), trained with the Gaussian negative log-likelihood on its own bootstrap of the data, with
PETS's soft bounds on the log-variance. Rollouts use one member per sampled trajectory (PETS's TS-infinity):
each step draws the next observation from that member's Gaussian.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..data_loading import Episode
from .base import seeded_init
from .networks import Normalizer, mlp
from .transitions import transitions_from_episodes


class GaussianEnsemble(nn.Module):
    """``n_members`` Gaussian MLPs over (Δobservation, reward) given (observation, action).

    Args:
        observation_dim, action_dim: sizes of the flat observation and action.
        n_members: ensemble members (PETS: 5).
        hidden: hidden widths of every member (PETS: 4 x 200).
        seed: seed of the initialisation, the bootstraps and the batches.
    """

    def __init__(
        self,
        observation_dim: int,
        action_dim: int,
        n_members: int = 5,
        hidden: Sequence[int] = (200, 200, 200, 200),
        seed: int = 0,
    ) -> None:
        super().__init__()
        if n_members < 1:
            raise ValueError(f"n_members must be >= 1, got {n_members}")
        self.observation_dim, self.action_dim, self.seed = observation_dim, action_dim, seed
        out = observation_dim + 1
        self.members = seeded_init(
            seed, lambda: nn.ModuleList([mlp(observation_dim + action_dim, 2 * out, hidden) for _ in range(n_members)])
        )
        self.inputs = Normalizer(observation_dim + action_dim)
        self.targets = Normalizer(out)
        self.max_log_var = nn.Parameter(torch.full((out,), 0.5))
        self.min_log_var = nn.Parameter(torch.full((out,), -10.0))

    def _gaussian(self, member: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance (B, O + 1), normalised units, of member ``member`` at inputs ``x`` (B, O + A)."""
        mean, log_var = self.members[member](self.inputs(x)).chunk(2, dim=-1)
        log_var = self.max_log_var - F.softplus(self.max_log_var - log_var)  # PETS's soft bounds
        return mean, self.min_log_var + F.softplus(log_var - self.min_log_var)

    def fit(
        self, episodes: Sequence[Episode], n_steps: int = 5000, batch_size: int = 256, learning_rate: float = 1e-3
    ) -> list[float]:
        """Train every member on its bootstrap of ``episodes``' transitions; returns the mean loss every 100 steps."""
        data = transitions_from_episodes(episodes, self.observation_dim, self.action_dim, need_next=True)
        x = np.concatenate([data.observations, data.actions], 1)  # (N, O + A)
        y = np.concatenate([data.next_observations - data.observations, data.rewards[:, None]], 1)  # (N, O + 1)
        self.inputs.fit(x)
        self.targets.fit(y)
        x_t, y_t = torch.as_tensor(x, dtype=torch.float32), self.targets(torch.as_tensor(y, dtype=torch.float32))
        rng = np.random.default_rng(self.seed)
        boots = [torch.as_tensor(rng.integers(len(x), size=len(x))) for _ in self.members]
        optimizer = torch.optim.Adam(self.parameters(), lr=learning_rate, weight_decay=1e-5)
        generator = torch.Generator().manual_seed(self.seed)
        losses: list[float] = []
        for step in range(n_steps):
            loss = torch.zeros(())
            for member, boot in enumerate(boots):
                rows = boot[torch.randint(len(boot), (batch_size,), generator=generator)]
                mean, log_var = self._gaussian(member, x_t[rows])
                loss = loss + (((mean - y_t[rows]) ** 2) * torch.exp(-log_var) + log_var).mean()
            loss = loss + 0.01 * (self.max_log_var.sum() - self.min_log_var.sum())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step % 100 == 0:
                losses.append(loss.item() / len(boots))
        return losses

    @torch.no_grad()
    def sample_rollouts(
        self, observation: np.ndarray, actions: np.ndarray, n_samples: int = 100, seed: int = 0
    ) -> np.ndarray:
        """(n_samples, H + 1, O) observations from ``observation`` (O,) under the recorded ``actions`` (H, A); each
        sample follows one member (``sample % n_members``)."""
        generator = torch.Generator().manual_seed(seed)
        obs = torch.as_tensor(np.asarray(observation, dtype=np.float32)).repeat(n_samples, 1)  # (N, O)
        acts = torch.as_tensor(np.asarray(actions, dtype=np.float32))  # (H, A)
        member_of = torch.arange(n_samples) % len(self.members)  # (N,)
        states = [obs]
        for t in range(len(acts)):
            x = torch.cat([obs, acts[t].expand(n_samples, -1)], 1)  # (N, O + A)
            draw = torch.empty(n_samples, self.observation_dim + 1)
            for member in range(len(self.members)):
                rows = member_of == member
                mean, log_var = self._gaussian(member, x[rows])
                noise = torch.randn(mean.shape, generator=generator)
                draw[rows] = mean + noise * torch.exp(0.5 * log_var)
            delta = draw * self.targets.std + self.targets.mean  # (N, O + 1) in the data's units
            obs = obs + delta[:, : self.observation_dim]
            states.append(obs)
        return torch.stack(states, 1).numpy()
