"""The model as a predictor (paper Section 4.1): sampled rollouts, long-horizon likelihood, attention maps and
rendered rollouts."""

from .attention import attention_maps, plot_attention, token_labels
from .likelihood import bin_widths, marginal_densities, oracle_log_likelihood, state_log_likelihood
from .masking import partially_observed
from .rendering import image_strip, render_observations, save_gif, save_image
from .report import analyze_episode
from .rollouts import Rollouts, sample_rollouts

__all__ = [
    "Rollouts",
    "analyze_episode",
    "attention_maps",
    "bin_widths",
    "image_strip",
    "marginal_densities",
    "oracle_log_likelihood",
    "partially_observed",
    "plot_attention",
    "render_observations",
    "sample_rollouts",
    "save_gif",
    "save_image",
    "state_log_likelihood",
    "token_labels",
]
