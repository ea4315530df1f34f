"""Token sampling: the cdf / top-k filters, density ranking, expected values and draws around them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tt_agents.config import PlannerConfig
from tt_agents.sampling import TokenSampler, sample_tokens
from tt_agents.tokenizer import Tokenizer

N_BINS = 10


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    """Column 0 continuous (quantile bins of uneven width), column 1 categorical with 3 categories."""
    rng = np.random.default_rng(0)
    data = np.stack([rng.exponential(1.0, 2000), rng.integers(0, 3, 2000)], axis=1)
    return Tokenizer(N_BINS, "quantile").fit(data, categories={1: 3})


def logits_of(rows: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, N_BINS + 1, generator=torch.Generator().manual_seed(seed)) * 2  # (R, V), V = N + stop


def test_greedy_sampling_is_argmax_and_never_the_stop_token() -> None:
    logits = torch.tensor([[0.0, 1.0, 3.0, 9.0], [2.0, 0.0, 0.0, 9.0]])  # last column = stop
    tokens, log_probs = sample_tokens(logits, 3, top_k=1, cdf=None, generator=None)
    assert tokens.tolist() == [2, 0]
    torch.testing.assert_close(log_probs, torch.log_softmax(logits[:, :3], -1).max(-1).values)


def test_cdf_filter_samples_only_from_the_top_mass() -> None:
    probs = torch.tensor([0.5, 0.3, 0.1, 0.05, 0.05])
    logits = probs.log().repeat(2000, 1)
    generator = torch.Generator().manual_seed(0)
    tokens, _ = sample_tokens(logits, 5, top_k=None, cdf=0.6, generator=generator)
    assert set(tokens.tolist()) == {0, 1}, "0.5 alone is below 0.6; 0.5 + 0.3 reaches it"
    tokens, _ = sample_tokens(logits, 5, top_k=3, cdf=None, generator=generator)
    assert set(tokens.tolist()) == {0, 1, 2}


def test_sampling_draws_as_multinomial_does_for_the_same_generator_state() -> None:
    logits = torch.randn(500, 9, generator=torch.Generator().manual_seed(1))
    logits[:, 2] = float("-inf")  # a bin the filter or a category mask ruled out is never drawn
    tokens, _ = sample_tokens(logits, 8, top_k=None, cdf=None, generator=torch.Generator().manual_seed(7))
    probs = logits[:, :8].softmax(-1)
    expected = torch.multinomial(probs, 1, generator=torch.Generator().manual_seed(7)).squeeze(-1)
    assert torch.equal(tokens, expected)
    assert 2 not in tokens.tolist() and 8 not in tokens.tolist()
    frequencies = torch.bincount(tokens, minlength=8) / 500.0
    assert (frequencies - probs.mean(0)).abs().max() < 0.06  # 500 draws from the mean distribution


def _authors_kept_bins(probs: torch.Tensor, threshold: float) -> set[int]:
    """The authors' cdf filter, stated from its definition: sort the bins from least to most likely and drop those
    whose cumulative mass stays below ``threshold`` (with any bin as likely as the last one dropped)."""
    ascending = torch.sort(probs).values
    below = torch.cumsum(ascending, 0) < threshold
    cut = ascending[below].max() if below.any() else ascending[0]
    return set(torch.nonzero(probs > cut).flatten().tolist())


def test_the_default_cdf_keeps_the_bins_the_authors_cdf_of_point_six_keeps() -> None:
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        probs = torch.distributions.Dirichlet(torch.full((20,), 0.3)).sample()
        logits = probs.log().repeat(4000, 1)
        tokens, _ = sample_tokens(logits, 20, None, PlannerConfig().cdf_act, generator)
        kept = _authors_kept_bins(probs, 0.6)
        assert set(tokens.tolist()) <= kept
        likely = {i for i in kept if probs[i] > 0.01}  # seen with certainty in 4000 draws
        assert likely <= set(tokens.tolist())


def test_density_ranking_prefers_the_narrow_bin_of_equal_probability() -> None:
    # two bins of equal probability, the first four times as wide: by density the second is the mode
    logits = torch.tensor([[0.0, 0.0, -5.0, 9.0]])
    log_widths = torch.tensor([4.0, 1.0, 1.0]).log()
    by_probability, _ = sample_tokens(logits, 3, top_k=1, cdf=None, generator=None)
    by_density, score = sample_tokens(logits, 3, top_k=1, cdf=None, generator=None, log_widths=log_widths)
    assert by_probability.tolist() == [0] and by_density.tolist() == [1]
    torch.testing.assert_close(score, torch.log_softmax(logits[:, :3], -1)[:, 1])  # log p - log 1


def test_density_ranking_keeps_the_densest_bins_until_the_mass_reaches_cdf() -> None:
    probs = torch.tensor([0.4, 0.3, 0.2, 0.1])  # widths 8, 1, 1, 1: densities 0.05, 0.3, 0.2, 0.1
    logits = probs.log().repeat(2000, 1)
    log_widths = torch.tensor([8.0, 1.0, 1.0, 1.0]).log()
    generator = torch.Generator().manual_seed(0)
    tokens, _ = sample_tokens(logits, 4, top_k=None, cdf=0.55, generator=generator, log_widths=log_widths)
    assert set(tokens.tolist()) == {1, 2, 3}, "0.3 + 0.2 < 0.55, so the third densest bin is kept too"
    tokens, _ = sample_tokens(logits, 4, top_k=2, cdf=None, generator=generator, log_widths=log_widths)
    assert set(tokens.tolist()) == {1, 2}
    share = (tokens == 1).float().mean().item()
    assert 0.5 < share < 0.7, "kept bins are sampled by probability (0.3 : 0.2)"


def test_the_expected_token_is_the_bin_of_the_expected_value_and_a_category_its_most_likely_one(tokenizer) -> None:
    sampler = TokenSampler(tokenizer, torch.device("cpu"))
    logits = logits_of(50)
    token, score, value = sampler.expected(logits, 0)
    probs = logits[:, :N_BINS].softmax(-1)
    torch.testing.assert_close(value, tokenizer.expectation(probs, 0))
    torch.testing.assert_close(token, torch.as_tensor(tokenizer.encode(value[:, None].numpy(), columns=[0])[:, 0]))
    torch.testing.assert_close(score, probs.log().gather(-1, token[:, None]).squeeze(-1))
    category, _, value = sampler.expected(logits, 1)
    assert torch.equal(category, logits[:, :3].argmax(-1)), "only the column's 3 categories compete"
    assert torch.equal(value, category.float())


def test_a_draw_around_the_expected_value_has_its_mean_and_spread_times_its_std_inside_the_fitted_range(
    tokenizer,
) -> None:
    sampler = TokenSampler(tokenizer, torch.device("cpu"), seed=0)
    logits = logits_of(1).repeat(20000, 1)  # one distribution, drawn 20000 times
    probs = logits[0, :N_BINS].softmax(-1).double()
    centers = torch.as_tensor(tokenizer.centers[0])
    mean = float((probs * centers).sum())
    std = float((probs * (centers - mean) ** 2).sum().sqrt())
    _, _, at_mean = sampler.around_expected(logits[:5], 0, 0.0)
    torch.testing.assert_close(at_mean.double(), torch.full((5,), mean, dtype=torch.float64))
    token, score, drawn = sampler.around_expected(logits, 0, 0.3)
    low, high = tokenizer.edges[0, 0], tokenizer.edges[0, -1]
    assert ((drawn >= low) & (drawn <= high)).all()
    assert abs(drawn.mean().item() - mean) < 0.01 * std + 1e-3
    assert abs(drawn.std().item() - 0.3 * std) < 0.05 * 0.3 * std
    assert torch.equal(token, torch.as_tensor(tokenizer.encode(drawn[:, None].numpy(), columns=[0])[:, 0]))
    torch.testing.assert_close(score, logits[:, :N_BINS].log_softmax(-1).gather(-1, token[:, None]).squeeze(-1))


def test_density_ranking_scores_a_token_by_its_log_density(tokenizer) -> None:
    by_density = TokenSampler(tokenizer, torch.device("cpu"), "density")
    by_probability = TokenSampler(tokenizer, torch.device("cpu"))
    logits = logits_of(30)
    token, density_score, _ = by_density.expected(logits, 0)
    _, probability_score, _ = by_probability.expected(logits, 0)
    log_widths = torch.as_tensor(np.log(tokenizer.bin_widths()[0]), dtype=torch.float32)
    torch.testing.assert_close(density_score, probability_score - log_widths[token])


def test_the_sampler_never_draws_past_a_categorical_columns_categories_and_repeats_for_a_seed(tokenizer) -> None:
    uniform = torch.zeros(3000, N_BINS + 1)
    draws = [TokenSampler(tokenizer, torch.device("cpu"), seed=5).sample(uniform, 1, None, None)[0] for _ in range(2)]
    assert set(draws[0].tolist()) == {0, 1, 2}
    assert torch.equal(draws[0], draws[1])
