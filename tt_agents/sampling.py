"""How the planner picks a column's next token from the model's logits.

Three ways, each returning the token and its score (its log-probability, or its log-density with density ranking):

- sampled from the best-ranked bins (:func:`sample_tokens`; the paper's search),
- the bin of the column's expected value (imitation's action; ``anchor_margin``'s anchor),
- a continuous draw around the expected value (``PlannerConfig.action_spread``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from .tokenizer import Tokenizer


def sample_tokens(
    logits: torch.Tensor,
    n_bins: int,
    top_k: int | None,
    cdf: float | None,
    generator: torch.Generator | None,
    log_widths: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample one token per row from ``logits`` (R, V), never the stop token, nor a token that ``valid`` (N,) bool
    rules out (past a categorical column's categories).

    Bins are ranked by probability, or, given ``log_widths`` (N,) of the column's bins, by probability density
    (probability / width). ``top_k`` keeps the k best-ranked bins (1 = greedy); ``cdf`` keeps the best-ranked
    bins until they hold at least that much probability; the kept bins are sampled by probability. Returns
    tokens (R,) and their score (R,): the log-probability under the unfiltered distribution over bins, minus
    the log width when ``log_widths`` is given (a log-density).
    """
    logits = logits[:, :n_bins].float()
    if valid is not None:
        logits = logits.masked_fill(~valid, float("-inf"))
    log_probs = F.log_softmax(logits, dim=-1)  # (R, N)
    ranks = log_probs if log_widths is None else log_probs - log_widths  # (R, N)
    if top_k == 1:
        tokens = ranks.argmax(dim=-1)
    else:
        drop = torch.zeros_like(ranks, dtype=torch.bool)
        if top_k is not None and top_k < n_bins:
            kth = torch.topk(ranks, top_k, dim=-1).values[:, -1:]
            drop |= ranks < kth
        if cdf is not None:
            sorted_ranks, order = torch.sort(ranks.masked_fill(drop, float("-inf")), dim=-1, descending=True)
            sorted_probs = log_probs.gather(-1, order).exp().masked_fill(sorted_ranks == float("-inf"), 0.0)
            mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
            drop |= torch.zeros_like(drop).scatter(-1, order, mass_before >= cdf)  # keep bins until mass reaches cdf
        probs = log_probs.masked_fill(drop, float("-inf")).softmax(dim=-1)  # (R, N)
        # torch.multinomial's own one-sample draw (an exponential race), without its checks of ``probs`` on the host,
        # which would stop the GPU for every sampled token: the same tokens for the same generator state
        race = torch.empty_like(probs).exponential_(1, generator=generator)
        tokens = (probs / race).argmax(dim=-1)
    return tokens, ranks.gather(-1, tokens[:, None]).squeeze(-1)


class TokenSampler:
    """Picks the tokens of a fitted tokenizer's columns from logits (R, V), on ``device`` with one seeded generator.

    Args:
        tokenizer: the fitted tokenizer (its bins, centres and categorical columns).
        device: where the logits live.
        bin_ranking: rank bins by ``probability``, or by ``density`` (probability / bin width) as the scores do.
        seed: the generator's seed (``None``: a random seed).
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        device: torch.device,
        bin_ranking: Literal["probability", "density"] = "probability",
        seed: int | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.device = device
        self.centers = torch.tensor(tokenizer.centers, dtype=torch.float32, device=device)  # (D, N)
        valid = tokenizer.valid_tokens()  # (D, N)
        self.valid = None if valid.all() else torch.as_tensor(valid, device=device)  # (D, N) or None
        self.log_widths = None  # (D, N) log width of every bin (floored: Tokenizer.bin_widths) with density ranking
        if bin_ranking == "density":
            self.log_widths = torch.as_tensor(np.log(tokenizer.bin_widths()), dtype=torch.float32, device=device)
        self.generator = torch.Generator(device=device)
        self.seed(seed)

    def seed(self, seed: int | None) -> None:
        """Re-seed the generator (``None``: a random seed)."""
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)

    def sample(
        self, logits: torch.Tensor, column: int, top_k: int | None, cdf: float | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`sample_tokens` for ``column`` with this sampler's bins, ranking and generator: tokens and scores
        (R,)."""
        log_widths = None if self.log_widths is None else self.log_widths[column]
        valid = None if self.valid is None else self.valid[column]
        return sample_tokens(logits, self.tokenizer.n_bins, top_k, cdf, self.generator, log_widths, valid)

    def expected(self, logits: torch.Tensor, column: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The token (R,) of ``column``'s expected value under ``logits`` (R, V), its score (R,) and the value (R,).

        A categorical column has no expected value: its most likely category stands in for it.
        """
        log_probs = self._log_probs(logits, column)  # (R, N)
        if self.tokenizer.categories[column] is not None:
            token = log_probs.argmax(-1)  # (R,)
            mean = token.to(torch.float32)
        else:
            mean = self.tokenizer.expectation(log_probs.exp(), column)  # (R,)
            token = self.tokenizer.encode(mean[:, None], columns=[column])[:, 0]  # (R,)
        return token, self._score(log_probs, token, column), mean

    def around_expected(
        self, logits: torch.Tensor, column: int, spread: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A draw (R,) of continuous ``column`` around its expected value under ``logits`` (R, V): the mean plus
        ``spread`` times the predicted standard deviation times a standard normal draw, kept inside the column's
        fitted range. Returns its token (R,), the token's score (R,) and the drawn value (R,)."""
        log_probs = self._log_probs(logits, column)  # (R, N)
        probs = log_probs.exp()
        mean = self.tokenizer.expectation(probs, column)  # (R,)
        std = (probs * (self.centers[column] - mean[:, None]).square()).sum(-1).sqrt()  # (R,)
        noise = torch.randn(mean.shape, generator=self.generator, device=self.device)
        low, high = self.tokenizer.edges[column, 0], self.tokenizer.edges[column, -1]
        value = (mean + spread * std * noise).clamp(float(low), float(high))
        token = self.tokenizer.encode(value[:, None], columns=[column])[:, 0]  # (R,)
        return token, self._score(log_probs, token, column), value

    def _log_probs(self, logits: torch.Tensor, column: int) -> torch.Tensor:
        """(R, V) -> (R, N): the log-probabilities of ``column``'s bins, without the stop token or invalid bins."""
        logits = logits[:, : self.tokenizer.n_bins].float()
        if self.valid is not None:
            logits = logits.masked_fill(~self.valid[column], float("-inf"))
        return F.log_softmax(logits, dim=-1)

    def _score(self, log_probs: torch.Tensor, token: torch.Tensor, column: int) -> torch.Tensor:
        """The score (R,) of ``token`` (R,) under ``log_probs`` (R, N): its log-probability, or its log-density with
        density ranking."""
        score = log_probs.gather(-1, token[:, None]).squeeze(-1)
        if self.log_widths is not None:
            score = score - self.log_widths[column][token]
        return score
