"""MiniGrid goal-reaching data (paper Appendix F): the scripted expert mixed with a uniform random policy, recorded
with Dict observations on a new map every episode.

:func:`make_minigrid_dataset` records :class:`~tt_agents.envs.minigrid_goal.MiniGridGoalExpert` in a
:class:`~tt_agents.envs.minigrid_goal.MiniGridGoalEnv` (``MiniGrid-MultiRoom-N4-S5-v1`` by default) with
:func:`~tt_agents.data_making.recording.record_dataset`. Each episode draws how often the expert's action is
replaced by a random one from ``random_fractions``: 0 gives expert trajectories, 1 uniform random ones (the
appendix's "mixture of trajectories from a pre-trained goal-reaching policy and a uniform random policy"), values
between give an expert that errs and recovers. Random and erring episodes rarely end at the map's goal; with
hindsight relabelling (goal = the cell an episode ended in) they are goal-reaching data all the same. Every
episode's reset seed is stored in the dataset, so :func:`training_seeds` tells which maps were trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import minari
import numpy as np

from ..envs.minigrid_goal import MiniGridGoalEnv, MiniGridGoalExpert
from .recording import record_dataset

MULTIROOM_ID = "MiniGrid-MultiRoom-N4-S5-v1"
"""The appendix's environment: four rooms of at most 5x5 cells joined by doors, a new layout every episode (``v1``:
minigrid's ``v0`` of this id makes six rooms)."""
MINIGRID_DATASET_ID = "tt-agents/minigrid-multiroom/mixed-v0"
"""Default Minari id of :func:`make_minigrid_dataset`."""
DEFAULT_RANDOM_FRACTIONS: tuple[float, ...] = (0.0, 0.0, 0.0, 0.25, 1.0)
"""Per-episode chance of a random action, one drawn per episode: three fifths expert episodes, a fifth erring ones
and a fifth uniformly random ones. A random episode runs to the time limit (80 steps, four times an expert's), so
even a fifth of the episodes is two fifths of the steps; with a quarter (``(0, 0, 0.25, 1)``) near-goal steps were
mostly random ones and the trained agent reached fewer held-out goals (measured in ``benchmarks/results/minigrid``)."""


class MixedMiniGridExpert:
    """:class:`~tt_agents.envs.minigrid_goal.MiniGridGoalExpert` whose ``random_fraction`` is drawn anew for every
    episode from ``random_fractions`` (``reset()`` is called by ``record_dataset`` at every episode's start)."""

    def __init__(self, env: MiniGridGoalEnv, random_fractions: Sequence[float], seed: int = 0) -> None:
        self.random_fractions = tuple(float(f) for f in random_fractions)
        if not self.random_fractions:
            raise ValueError("random_fractions must not be empty")
        self.expert = MiniGridGoalExpert(env, self.random_fractions[0], seed=seed)
        for fraction in self.random_fractions:
            self.expert.random_fraction = fraction  # checks each is in [0, 1]
        self._rng = np.random.default_rng(seed + 1)

    def reset(self) -> None:
        self.expert.random_fraction = float(self._rng.choice(self.random_fractions))

    def __call__(self, observation: dict[str, Any]) -> int:
        return self.expert(observation)


def make_minigrid_dataset(
    n_episodes: int = 2000,
    env_id: str = MULTIROOM_ID,
    random_fractions: float | Sequence[float] = DEFAULT_RANDOM_FRACTIONS,
    seed: int = 0,
    dataset_id: str = MINIGRID_DATASET_ID,
    max_episode_steps: int | None = None,
    view: str = "map",
    overwrite: bool = False,
    show_progress: bool = True,
) -> minari.MinariDataset:
    """Record the mixed expert in ``env_id`` (wrapped as a goal task) as a local Minari dataset.

    Args:
        n_episodes: episodes to record, each on the map its reset seed makes.
        env_id: a MiniGrid environment whose doors open with ``toggle`` (MultiRoom, FourRooms, the door maps).
        random_fractions: the chance of a random action in an episode, or several: each episode draws one.
        seed: seed of the resets (the first episode is reset with ``seed``, the others with seeds drawn from it,
            all stored in the dataset) and of the policy's random choices.
        dataset_id: Minari id ``namespace/name-vN``.
        max_episode_steps: time limit (default: the environment's own, 80 steps for MultiRoom-N4).
        view: the ``map`` observation (:class:`~tt_agents.envs.minigrid_goal.MiniGridGoalEnv`): ``"map"``, the
            whole map, or ``"local"``, the 11 x 11 cells around the agent at every step.
        overwrite: replace an existing dataset with the same id (otherwise that is a ``FileExistsError``).
        show_progress: show a progress bar.
    """
    fractions = (random_fractions,) if isinstance(random_fractions, int | float) else tuple(random_fractions)
    env = MiniGridGoalEnv(env_id, view=view)
    try:
        policy = MixedMiniGridExpert(env, fractions, seed=seed)
        return record_dataset(
            env,
            policy,
            dataset_id,
            n_episodes=n_episodes,
            seed=seed,
            max_episode_steps=max_episode_steps,
            algorithm_name="scripted shortest path mixed with uniform random actions",
            description=(
                f"{env_id} as a goal task (Dict observations: agent cell and direction, goal cell, the "
                f"{'whole map' if view == 'map' else 'cells around the agent'} as object types), 4 actions; per "
                f"episode the chance of a random action is drawn from {list(fractions)}"
            ),
            overwrite=overwrite,
            show_progress=show_progress,
        )
    finally:
        env.close()


def training_seeds(dataset: minari.MinariDataset) -> set[int]:
    """The reset seeds of a dataset's episodes (the maps it holds): held-out maps use seeds outside it."""
    metadata = dataset.storage.get_episode_metadata(range(dataset.total_episodes))
    seeds = {meta.get("seed") for meta in metadata}
    if None in seeds:
        raise ValueError(f"{dataset.spec.dataset_id} does not store every episode's reset seed")
    return {int(seed) for seed in seeds}
