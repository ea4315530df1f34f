"""A partially observed version of fully observed data (the paper's Figure 3, right)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from ..data_loading import Episode

MASK_UNITS = ("state", "episode")


def partially_observed(
    episodes: Sequence[Episode],
    probability: float = 0.5,
    per: Literal["state", "episode"] = "state",
    seed: int = 0,
) -> list[Episode]:
    """The episodes with each observation dimension masked out (set to 0) with ``probability``.

    ``per="state"``: a new mask for every observation, the paper's "each dimension of every state is masked out
    with 50% probability"; ``per="episode"``: one mask for the whole episode (a sensor that is missing
    throughout). Actions, rewards and terminals are kept; the final observation is masked like the others. The
    same ``seed`` gives the same masks. Masking with 0 suits continuous observations: a Discrete space's data is
    refused (0 is a real category), but a MultiDiscrete or MultiBinary space's integers are stored as a Box's and
    cannot be told apart; do not mask those.
    """
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability must be in [0, 1], got {probability}")
    if per not in MASK_UNITS:
        raise ValueError(f"per must be one of {MASK_UNITS}, got {per!r}")
    if any(episode.discrete_observations for episode in episodes):
        raise ValueError(
            "partially_observed masks observation dimensions with 0; a Discrete space's state is one category, "
            "and 0 is a real one"
        )
    rng = np.random.default_rng(seed)
    masked = []
    for episode in episodes:
        T, O = episode.observations.shape
        rows = T + (episode.final_observation is not None)
        keep = rng.random((rows if per == "state" else 1, O)) >= probability  # (rows or 1, O)
        keep = np.broadcast_to(keep, (rows, O))
        final = None if episode.final_observation is None else episode.final_observation * keep[T]
        masked.append(episode.replaced(observations=episode.observations * keep[:T], final_observation=final))
    return masked
