"""Offline-RL datasets made locally, written in Minari format.

* :mod:`~tt_agents.data_making.recording`: :func:`record_dataset` runs a policy in a Gymnasium environment and
  writes a local Minari dataset with reference scores; :func:`summarize_dataset` describes one.
* :mod:`~tt_agents.data_making.inverted_pendulum`: a scripted linear-feedback expert for ``InvertedPendulum-v5``
  and :func:`make_inverted_pendulum_dataset` (``expert`` or ``mixed`` quality, in seconds).
* :mod:`~tt_agents.data_making.sac`: :func:`train_sac`, resumable SB3 SAC runs with evaluated policy snapshots,
  and :func:`replay_buffer_episodes`; :mod:`~tt_agents.data_making.sac_files` stores their policies, training
  states and replay buffers as JSON, safetensors and ``.npz`` (nothing pickled).
* :mod:`~tt_agents.data_making.locomotion`: :func:`make_locomotion_dataset`, D4RL-v2-style levels (``random``,
  ``medium``, ``medium-replay``, ``expert``, ``medium-expert``) for MuJoCo locomotion and any Box-action
  environment, at a :class:`DatasetBudget` (:mod:`~tt_agents.data_making.budget`);
  :mod:`~tt_agents.data_making.data_policies`: the SAC policies shipped for some levels (:func:`shipped_policies`),
  recorded from without training under the cpu budget.
* :mod:`~tt_agents.data_making.point_maze`: :func:`make_point_maze_dataset`, D4RL maze2d-style PointMaze data
  (imported on first use: it loads gymnasium-robotics).
* :mod:`~tt_agents.data_making.four_rooms`: :func:`make_four_rooms_dataset`, the four-rooms expert data, and
  :func:`training_episodes`, its episodes with hindsight goals and relabelled prefixes.
* :mod:`~tt_agents.data_making.minigrid`: :func:`make_minigrid_dataset`, MiniGrid goal reaching on a new map every
  episode (Dict observations with the map), the shortest-path expert mixed with random actions; and
  :func:`training_seeds`, the maps a dataset holds.
"""

import importlib
from typing import Any

from .budget import D4RL_EXPERT_SAC_STEPS, DatasetBudget
from .data_policies import ShippedPolicy, shipped_policies, shipped_policy, shipped_sac_kwargs
from .four_rooms import FOUR_ROOMS_DATASET_ID, MixedNoiseExpert, make_four_rooms_dataset, training_episodes
from .inverted_pendulum import (
    DRIFTING_GAINS,
    INVERTED_PENDULUM_ENV,
    INVERTED_PENDULUM_GAINS,
    INVERTED_PENDULUM_MAX_RETURN,
    INVERTED_PENDULUM_RANDOM_RETURN,
    inverted_pendulum_policy,
    make_inverted_pendulum_dataset,
)
from .locomotion import (
    D4RL_REFERENCE_SCORES,
    LOCOMOTION_LEVELS,
    LocomotionLevel,
    locomotion_dataset_id,
    make_locomotion_dataset,
    medium_target_return,
)
from .minigrid import (
    MINIGRID_DATASET_ID,
    MULTIROOM_ID,
    MixedMiniGridExpert,
    make_minigrid_dataset,
    training_seeds,
)
from .recording import DatasetSummary, Policy, check_dataset_id, record_dataset, summarize_dataset
from .sac import (
    DEFAULT_SAC_WORKDIR,
    SHORT_ENV_NAMES,
    SACEvaluation,
    load_sac_policy,
    read_evaluations,
    replay_buffer_episodes,
    resolve_env_id,
    sac_run_dir,
    train_sac,
)

__all__ = [
    "D4RL_EXPERT_SAC_STEPS",
    "D4RL_REFERENCE_SCORES",
    "DEFAULT_SAC_WORKDIR",
    "DRIFTING_GAINS",
    "FOUR_ROOMS_DATASET_ID",
    "INVERTED_PENDULUM_ENV",
    "INVERTED_PENDULUM_GAINS",
    "INVERTED_PENDULUM_MAX_RETURN",
    "INVERTED_PENDULUM_RANDOM_RETURN",
    "LOCOMOTION_LEVELS",
    "MINIGRID_DATASET_ID",
    "MULTIROOM_ID",
    "SHORT_ENV_NAMES",
    "DatasetBudget",
    "DatasetSummary",
    "LocomotionLevel",
    "MixedMiniGridExpert",
    "MixedNoiseExpert",
    "Policy",
    "SACEvaluation",
    "ShippedPolicy",
    "check_dataset_id",
    "inverted_pendulum_policy",
    "load_sac_policy",
    "locomotion_dataset_id",
    "make_four_rooms_dataset",
    "make_inverted_pendulum_dataset",
    "make_locomotion_dataset",
    "make_minigrid_dataset",
    "make_point_maze_dataset",
    "medium_target_return",
    "point_maze_dataset_id",
    "read_evaluations",
    "record_dataset",
    "replay_buffer_episodes",
    "resolve_env_id",
    "sac_run_dir",
    "shipped_policies",
    "shipped_policy",
    "shipped_sac_kwargs",
    "summarize_dataset",
    "train_sac",
    "training_episodes",
    "training_seeds",
]

_ON_FIRST_USE = {"make_point_maze_dataset": ".point_maze", "point_maze_dataset_id": ".point_maze"}


def __getattr__(name: str) -> Any:
    if name in _ON_FIRST_USE:
        return getattr(importlib.import_module(_ON_FIRST_USE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
