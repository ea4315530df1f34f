"""The PETS-style Gaussian ensemble: it trains, its one-step predictions beat standing still, its rollouts have
the shape asked for and repeat with their seed."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import pendulum_episodes

from tt_agents.baselines import GaussianEnsemble
from tt_agents.data_loading import load_episodes

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_ensemble_learns_the_dynamics_and_samples_rollouts() -> None:
    episodes = load_episodes(pendulum_episodes(n_episodes=6, steps=60, noise=0.3))
    ensemble = GaussianEnsemble(4, 1, n_members=3, hidden=(32, 32), seed=0)
    losses = ensemble.fit(episodes, n_steps=400, batch_size=64)
    assert losses[-1] < losses[0]
    episode = episodes[0]
    one_step = ensemble.sample_rollouts(episode.observations[10], episode.actions[10:11], n_samples=30)
    assert one_step.shape == (30, 2, 4)
    predicted_error = np.abs(one_step[:, 1].mean(0) - episode.observations[11]).sum()
    still_error = np.abs(episode.observations[10] - episode.observations[11]).sum()
    assert predicted_error < still_error
    rollouts = ensemble.sample_rollouts(episode.observations[0], episode.actions[:20], n_samples=6, seed=4)
    assert rollouts.shape == (6, 21, 4) and np.isfinite(rollouts).all()
    np.testing.assert_array_equal(
        rollouts, ensemble.sample_rollouts(episode.observations[0], episode.actions[:20], 6, 4)
    )
    with pytest.raises(ValueError, match="n_members"):
        GaussianEnsemble(4, 1, n_members=0)
