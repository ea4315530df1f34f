"""Four-rooms goal-reaching data (paper Section 4, Figure 6): the expert dataset and the episodes trained on.

* :func:`make_four_rooms_dataset` records :class:`~tt_agents.envs.four_rooms_expert.FourRoomsExpert` in
  ``tt_agents/FourRooms-v0`` with :func:`~tt_agents.data_making.recording.record_dataset`: every episode starts
  and ends at points sampled uniformly over the free space (the environment's own ``reset``) and ends when the
  expert reaches its goal (or at the 100-step time limit); the expert's action noise is drawn per episode from a
  few levels (:class:`MixedNoiseExpert`). Observations are the environment's Dict (``observation``,
  ``achieved_goal``, ``desired_goal``), so the Trajectory Transformer's hindsight relabelling (goal = the
  episode's final ``achieved_goal``) and the goal-conditioned BC baseline both read it.
* :func:`training_episodes`: those episodes with their hindsight goals, plus relabelled prefixes of each
  (:func:`tt_agents.data_loading.relabelled_prefixes`), multiplying the distinct goals seen in training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import minari
import numpy as np

from ..data_loading import Episode, load_episodes, relabelled_prefixes
from ..envs import FOUR_ROOMS_ID
from ..envs.four_rooms_expert import FourRoomsExpert
from .recording import record_dataset

FOUR_ROOMS_DATASET_ID = "tt-agents/fourrooms/expert-v0"
"""Default Minari id of :func:`make_four_rooms_dataset`."""
DEFAULT_EPISODES = 1000
"""Default number of episodes recorded by :func:`make_four_rooms_dataset`."""
DEFAULT_NOISE: tuple[float, ...] = (0.1, 0.3, 0.5)
"""Default noise levels of the expert (standard deviation of its Gaussian action noise), one drawn per
episode: the noisier episodes bump into walls and recover, which a learned policy needs after a mistake."""
DEFAULT_PREFIXES = 8
"""Relabelled prefixes per recorded episode in :func:`training_episodes`."""


class MixedNoiseExpert:
    """:class:`~tt_agents.envs.four_rooms_expert.FourRoomsExpert` whose noise level is drawn anew for every
    episode from ``noise_levels``.

    Noisier episodes bump into walls and recover, so the data also covers states off the expert's usual
    routes (what a learned policy visits after a small mistake). ``reset()`` is called by
    :func:`~tt_agents.data_making.recording.record_dataset` at the start of every episode.
    """

    def __init__(self, env: gym.Env, noise_levels: Sequence[float], seed: int = 0) -> None:
        self.noise_levels = tuple(float(n) for n in noise_levels)
        if not self.noise_levels:
            raise ValueError("noise_levels must not be empty")
        self.expert = FourRoomsExpert(env, noise=self.noise_levels[0], seed=seed)
        self._rng = np.random.default_rng(seed + 1)

    def reset(self) -> None:
        self.expert.noise = float(self._rng.choice(self.noise_levels))

    def __call__(self, observation: dict[str, Any]) -> np.ndarray:
        return self.expert(observation)


def make_four_rooms_dataset(
    n_episodes: int = DEFAULT_EPISODES,
    noise: float | Sequence[float] = DEFAULT_NOISE,
    seed: int = 0,
    dataset_id: str = FOUR_ROOMS_DATASET_ID,
    overwrite: bool = False,
    show_progress: bool = True,
) -> minari.MinariDataset:
    """Record the noisy scripted expert in ``tt_agents/FourRooms-v0`` as a local Minari dataset.

    Args:
        n_episodes: episodes to record; each has its start and goal sampled uniformly over the free space.
        noise: standard deviation of the Gaussian noise on each action component (``0`` is noise-free), or
            several levels: each episode then draws one uniformly (:class:`MixedNoiseExpert`).
        seed: seed of the environment resets (the first episode is reset with ``seed``, the others with seeds
            drawn from it) and of the expert's noise.
        dataset_id: Minari id ``namespace/name-vN``.
        overwrite: replace an existing dataset with the same id (otherwise that is a ``FileExistsError``).
        show_progress: show a progress bar.

    Returns:
        The written dataset (Dict observations; sparse reward ``-1`` per step, ``0`` on reaching the goal,
        which terminates the episode).
    """
    env = gym.make(FOUR_ROOMS_ID)
    levels = (float(noise),) if np.isscalar(noise) else tuple(float(n) for n in noise)
    expert = MixedNoiseExpert(env, levels, seed=seed)
    try:
        return record_dataset(
            env,
            expert,
            dataset_id,
            n_episodes=n_episodes,
            seed=seed,
            algorithm_name="FourRoomsExpert (scripted shortest route through the doorways)",
            description=(
                f"Scripted goal-reaching expert with Gaussian action noise std drawn per episode from {levels}; "
                "start and goal sampled "
                f"uniformly over the free space; {n_episodes} episodes, seed {seed}."
            ),
            overwrite=overwrite,
            show_progress=show_progress,
        )
    finally:
        env.close()


def training_episodes(dataset: Any, n_prefixes: int = DEFAULT_PREFIXES, seed: int = 0) -> list[Episode]:
    """The episodes of ``dataset`` (a Minari id or ``MinariDataset``) with their hindsight goals, plus
    ``n_prefixes`` relabelled prefixes each (:func:`tt_agents.data_loading.relabelled_prefixes`): what the
    four-rooms agent recipe and the BC baseline train on."""
    episodes = load_episodes(dataset, observation_key="observation", goal_key="achieved_goal")
    return relabelled_prefixes(episodes, n_prefixes, seed=seed)
