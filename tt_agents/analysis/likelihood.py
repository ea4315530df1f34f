"""Long-horizon likelihood (paper Figure 3): how likely the real states are under a model's sampled ones.

Per timestep and state dimension, the sampled trajectories give a marginal distribution over the tokenizer's
bins; each bin is a uniform density over its range (the paper's Appendix), so a marginal is a piecewise-constant
density that integrates to 1. The reference (held-out, real) state's log-likelihood under it, summed over the
state's dimensions, is the score; :func:`oracle_log_likelihood` is the best score a model with these bins can
reach (all mass on the reference's bin). Any sampler's states can be scored so (e.g. a Gaussian ensemble's),
which puts every model on the same bins.
"""

from __future__ import annotations

import numpy as np

from ..tokenizer import Tokenizer


def bin_widths(tokenizer: Tokenizer, columns: slice) -> np.ndarray:
    """(D, N) width of every bin of ``columns``, floored as :meth:`Tokenizer.bin_widths` does (a bin of repeated
    values has no width; it gets a tenth of a uniform bin's)."""
    return tokenizer.bin_widths()[columns]


def marginal_densities(tokens: np.ndarray, tokenizer: Tokenizer, columns: slice, smoothing: float = 0.5) -> np.ndarray:
    """Piecewise-constant densities (H, D, N) of the samples ``tokens`` (n_samples, H, D) per timestep and column:
    each bin's share of the samples (with ``smoothing`` pseudo-counts per bin, so a bin no sample fell in has a
    small, finite density) divided by its width. Each (timestep, column) integrates to 1 over the bins."""
    n_bins = tokenizer.n_bins
    tokens = np.asarray(tokens)
    counts = np.stack(
        [np.apply_along_axis(np.bincount, 0, tokens[:, h], minlength=n_bins).T for h in range(tokens.shape[1])]
    )
    probs = (counts + smoothing) / (tokens.shape[0] + smoothing * n_bins)  # (H, D, N)
    return probs / bin_widths(tokenizer, columns)[None]


def state_log_likelihood(
    tokens: np.ndarray, reference: np.ndarray, tokenizer: Tokenizer, columns: slice, smoothing: float = 0.5
) -> np.ndarray:
    """Log-likelihood (H,) of the reference states ``reference`` (H, D) under the marginals of the sampled
    ``tokens`` (n_samples, H, D), summed over the D dimensions."""
    density = marginal_densities(tokens, tokenizer, columns, smoothing)  # (H, D, N)
    ref_tokens = np.asarray(tokenizer.encode(np.asarray(reference, dtype=np.float64), columns=columns))  # (H, D)
    picked = np.take_along_axis(density, ref_tokens[..., None], axis=-1)[..., 0]  # (H, D)
    return np.log(picked).sum(-1)


def oracle_log_likelihood(reference: np.ndarray, tokenizer: Tokenizer, columns: slice) -> np.ndarray:
    """The discrete oracle (H,): the log-likelihood of ``reference`` (H, D) when all mass is on its own bin."""
    ref_tokens = np.asarray(tokenizer.encode(np.asarray(reference, dtype=np.float64), columns=columns))  # (H, D)
    widths = np.take_along_axis(bin_widths(tokenizer, columns), ref_tokens.T, axis=1).T  # (H, D)
    return -np.log(widths).sum(-1)
