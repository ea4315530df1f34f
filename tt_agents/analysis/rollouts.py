"""Sampled rollouts: the trained model as a long-horizon dynamics model (paper Section 4.1, Figures 2 and 3).

From a start taken from an episode (its past transitions as the context), :func:`sample_rollouts` samples
``n_samples`` trajectories of ``horizon`` transitions token by token from the model's full predicted
distributions, all samples at once on the model's KV cache. Actions are either the episode's recorded ones (the
model then predicts the states those actions lead to) or sampled from the model too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ..agent import TrajectoryTransformerAgent
from ..data_loading import Episode
from ..planner import PlanningContext


@dataclass
class Rollouts:
    """Sampled trajectories; row 0 of ``observation_tokens`` / ``observations`` is the start, as the model sees it.

    observation_tokens: (N, H + 1, O) bin indices; observations: (N, H + 1, O) their bin centres.
    actions: (N, H, A) the actions taken (recorded or sampled; bin centres when sampled).
    rewards: (N, H) sampled rewards (bin centres).
    """

    observation_tokens: np.ndarray
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray


@torch.no_grad()
def sample_rollouts(
    agent: TrajectoryTransformerAgent,
    episode: Episode,
    start: int,
    horizon: int,
    n_samples: int = 100,
    *,
    actions: Literal["recorded", "model"] = "recorded",
    seed: int = 0,
) -> Rollouts:
    """Sample ``n_samples`` trajectories of ``horizon`` transitions from step ``start`` of ``episode``.

    The context is the episode's transitions before ``start`` (at most ``sequence_length - 1``, what a window's
    last transition sees in training) and its observation at ``start``; as the window slides, every sampled
    transition sees as many transitions before it. Every token is drawn from the model's predicted
    distribution over bins (the stop token excluded); with ``actions="recorded"`` the action tokens are the
    episode's own actions instead (so ``start + horizon`` must lie within the episode).
    """
    _check_request(agent, episode, start, horizon, n_samples, actions)
    model, tokenizer, lay = agent.model, agent.tokenizer, agent.layout
    device = next(model.parameters()).device
    keep = max(1, model.config.sequence_length - 1)  # every transition sees this many before it, as in training
    k = min(start, keep)
    context = PlanningContext(
        [episode.observations[start - k : start + 1]],
        [episode.actions[start - k : start]],
        [episode.rewards[start - k : start]],
    )
    planner = agent.planner
    tokens, pads = planner.context_tokens(context)
    tokens = tokens[:, int(pads[0]) :].repeat(n_samples, 1)  # (N, T) the context, unpadded, once per sample
    grid = episode.map_at(start)  # a map model reads the episode's map, or the start's where it changes
    maps = None if grid is None else torch.as_tensor(grid, device=device).repeat(n_samples, 1, 1)
    cache, logits = model.prefill(tokens, maps=maps)
    next_logits = logits[:, -1]  # (N, V): the first action token
    generator = torch.Generator(device=device).manual_seed(seed)
    N, O, A, n_bins = n_samples, lay.observation_dim, lay.action_dim, tokenizer.n_bins
    obs_tokens = torch.zeros(N, horizon + 1, O, dtype=torch.long, device=device)
    obs_tokens[:, 0] = tokens[:, -O:]
    act_tokens = torch.zeros(N, horizon, A, dtype=torch.long, device=device)
    reward_tokens = torch.zeros(N, horizon, dtype=torch.long, device=device)

    valid = torch.as_tensor(tokenizer.valid_tokens(), device=device)  # (D, n_bins): past a category's are not

    def draw(logits: torch.Tensor, column: int) -> torch.Tensor:
        scores = logits[:, :n_bins].float().masked_fill(~valid[column], float("-inf"))  # (N, n_bins)
        return torch.multinomial(scores.softmax(-1), 1, generator=generator).squeeze(-1)

    def step(token: torch.Tensor) -> torch.Tensor:
        return model.decode(cache, token[:, None], keep_transitions=keep)[:, -1]

    recorded = (
        tokenizer.encode(episode.actions[start : start + horizon], columns=lay.action_slice)
        if actions == "recorded"
        else None
    )
    first_action = lay.action_slice.start
    for t in range(horizon):
        for j in range(A):
            if recorded is not None:
                token = torch.full((N,), int(recorded[t, j]), device=device)
            else:
                token = draw(next_logits, first_action + j)
            act_tokens[:, t, j] = token
            next_logits = step(token)
        reward_tokens[:, t] = draw(next_logits, lay.reward_index)
        value_logits = step(reward_tokens[:, t])
        next_logits = step(draw(value_logits, lay.value_index))
        for i in range(O):
            obs_tokens[:, t + 1, i] = draw(next_logits, lay.observation_slice.start + i)
            if t < horizon - 1 or i < O - 1:
                next_logits = step(obs_tokens[:, t + 1, i])
    obs_np = obs_tokens.cpu().numpy()
    return Rollouts(
        observation_tokens=obs_np,
        observations=tokenizer.decode(obs_np, columns=lay.observation_slice),
        actions=tokenizer.decode(act_tokens.cpu().numpy(), columns=lay.action_slice),
        rewards=tokenizer.decode(reward_tokens.cpu().numpy()[..., None], columns=[lay.reward_index])[..., 0],
    )


def _check_request(
    agent: TrajectoryTransformerAgent, episode: Episode, start: int, horizon: int, n_samples: int, actions: str
) -> None:
    if agent.model is None or agent.tokenizer is None:
        raise RuntimeError("sample_rollouts: the agent is not trained")
    if agent.layout.goal_dim:
        raise ValueError("sample_rollouts: goal-conditioned agents are not supported")
    if actions not in ("recorded", "model"):
        raise ValueError(f"actions must be 'recorded' or 'model', got {actions!r}")
    if not 0 <= start < len(episode) or horizon < 1 or n_samples < 1:
        raise ValueError(f"start must be a step of the episode (0..{len(episode) - 1}), horizon and n_samples >= 1")
    if actions == "recorded" and start + horizon > len(episode):
        raise ValueError(f"recorded actions: start + horizon ({start + horizon}) exceeds the episode ({len(episode)})")
