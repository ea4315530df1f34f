"""The authors' beam search without a cache, re-implemented to time against :class:`~tt_agents.planner.BeamPlanner`.

:class:`UncachedBeamPlanner` follows the released ``beam_plan`` (jannerm/trajectory-transformer,
``trajectory/search/core.py`` and ``sampling.py``): every sampled token re-runs ``model(x)`` on the whole cropped
sequence. It samples with :func:`tt_agents.sampling.sample_tokens` and scores with ``Tokenizer.expectation``, as the
cached planner does, so the cache is the only difference that matters for speed. :class:`Counts` records the work
a planning call does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from tt_agents.config import PlannerConfig
from tt_agents.layout import TransitionLayout
from tt_agents.model import TrajectoryGPT
from tt_agents.planner import PlanningContext
from tt_agents.sampling import sample_tokens
from tt_agents.tokenizer import Tokenizer


@dataclass
class Counts:
    """Work done by one planning call.

    token_evals: token positions pushed through the network (rows x tokens of every forward/decode call).
    key_evals: attention keys scored, summed over those token positions (one layer, all heads together).
    """

    token_evals: int = 0
    key_evals: int = 0
    calls: int = 0

    def add(self, rows: int, tokens: int, keys_per_token: float) -> None:
        self.token_evals += rows * tokens
        self.key_evals += int(rows * tokens * keys_per_token)
        self.calls += 1


@dataclass
class UncachedBeamPlanner:
    """The authors' ``beam_plan``: no cache, every sampled token re-runs the model on the cropped sequence.

    ``x`` is repeated ``beam_width`` times; each planning step repeats it ``n_expand`` times, samples the
    action tokens one at a time, then the reward and reward-to-go tokens (scores use their expectations:
    cumulative discounted reward + discounted reward-to-go), keeps the ``beam_width`` best rows and decodes
    the next observation token by token (greedy with ``k_obs=1``). Before every forward pass the sequence is
    cropped to at most ``max_context_transitions * transition_dim - 1`` tokens (never more than the model's
    block), whole transitions at a time, as ``trajectory/search/sampling.py::forward`` does.
    """

    model: TrajectoryGPT
    tokenizer: Tokenizer
    config: PlannerConfig
    counts: Counts = field(default_factory=Counts)

    def __post_init__(self) -> None:
        self.layout = self.model.layout
        device = self.model.pos_emb.device
        self.generator = torch.Generator(device=device)
        if self.config.seed is not None:
            self.generator.manual_seed(self.config.seed)
        D = self.layout.transition_dim
        k = self.config.max_context_transitions
        self.max_block = min(self.model.block_size, k * D - 1) if k else self.model.block_size

    def _next_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (R, V) of the token after ``x`` (R, T): one full forward pass over the cropped sequence."""
        D = self.layout.transition_dim
        if x.shape[1] > self.max_block:
            n_crop = -(-(x.shape[1] - self.max_block) // D) * D  # rounded up to whole transitions
            x = x[:, n_crop:]
        rows, length = x.shape
        # SDPA gets an explicit (T, T) mask, so every query scores all T keys.
        self.counts.add(rows, length, length)
        logits, _ = self.model(x)
        return logits[:, -1]

    def _sample_n(self, x: torch.Tensor, n: int, top_k: int | None, cdf: float | None) -> tuple[torch.Tensor, list]:
        """Append ``n`` sampled tokens to ``x``; also returns the logits each token was sampled from."""
        all_logits = []
        for _ in range(n):
            logits = self._next_logits(x)
            token, _ = sample_tokens(logits, self.tokenizer.n_bins, top_k, cdf, self.generator)
            x = torch.cat([x, token[:, None]], dim=1)
            all_logits.append(logits)
        return x, all_logits

    @torch.no_grad()
    def plan(self, x: torch.Tensor) -> np.ndarray:
        """Plan from the context tokens ``x`` (1, T); returns the best beam's actions (horizon, A)."""
        cfg, lay = self.config, self.layout
        N, H, D = self.tokenizer.n_bins, cfg.horizon, lay.transition_dim
        self.counts = Counts()
        x = x.repeat(cfg.beam_width, 1)
        rewards = torch.zeros(cfg.beam_width, H + 1, device=x.device)
        discounts = cfg.discount ** torch.arange(H + 1, device=x.device, dtype=rewards.dtype)
        values = torch.zeros(cfg.beam_width, device=x.device)
        for t in range(H):
            x = x.repeat(cfg.n_expand, 1)
            rewards = rewards.repeat(cfg.n_expand, 1)
            x, _ = self._sample_n(x, lay.action_dim, cfg.k_act, cfg.cdf_act)
            x, (r_logits, v_logits) = self._sample_n(x, 2, cfg.k_reward, None)
            rewards[:, t] = self.tokenizer.expectation(r_logits[:, :N].float().softmax(-1), lay.reward_index)
            rewards[:, t + 1] = self.tokenizer.expectation(v_logits[:, :N].float().softmax(-1), lay.value_index)
            values, rows = torch.topk((rewards * discounts).sum(-1), cfg.beam_width)
            x, rewards = x[rows], rewards[rows]
            if t < H - 1:
                x, _ = self._sample_n(x, lay.observation_dim, cfg.k_obs, cfg.cdf_obs)
        best = x[values.argmax()]  # (T,) with T a multiple of D: context, then the plan
        plan = best.view(-1, D)[-H:]
        return self.tokenizer.decode(plan[:, lay.action_slice], columns=lay.action_slice).cpu().numpy()


def context_tokens(context: PlanningContext, tokenizer: Tokenizer, layout: TransitionLayout) -> torch.Tensor:
    """The context of the single environment as tokens (1, T): per past transition [obs, act, reward, value
    placeholder 0], then the current observation."""
    obs, act, rew = context.observations[0], context.actions[0], context.rewards[0]
    k = len(act)
    past = np.concatenate([obs[:k], act, rew[:, None]], axis=1)  # (k, D - 1)
    past_tokens = tokenizer.encode(past, columns=slice(0, layout.value_index))
    placeholder = np.zeros((k, 1), dtype=np.int64)  # reward-to-go is never attended to
    current = tokenizer.encode(obs[-1], columns=layout.observation_slice)
    tokens = np.concatenate([np.concatenate([past_tokens, placeholder], axis=1).ravel(), current])
    return torch.as_tensor(tokens)[None]
