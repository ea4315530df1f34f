"""Environments shipped with ``tt_agents``; importing this package registers them with Gymnasium.

* ``tt_agents/FourRooms-v0``: continuous four-rooms goal reaching
  (:class:`~tt_agents.envs.four_rooms.FourRoomsEnv`, time limit
  :data:`~tt_agents.envs.four_rooms.MAX_EPISODE_STEPS`), with the scripted expert
  :class:`~tt_agents.envs.four_rooms_expert.FourRoomsExpert`.

:mod:`tt_agents.envs.point_maze` (imported on its own: it loads gymnasium-robotics) holds the PointMaze tasks and
their scripted expert. Environments here know nothing of agents, tokens or datasets.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from .four_rooms import MAX_EPISODE_STEPS, FourRoomsEnv
from .four_rooms_expert import FourRoomsExpert

FOUR_ROOMS_ID = "tt_agents/FourRooms-v0"

if FOUR_ROOMS_ID not in registry:
    register(
        id=FOUR_ROOMS_ID,
        entry_point="tt_agents.envs.four_rooms:FourRoomsEnv",
        max_episode_steps=MAX_EPISODE_STEPS,
    )

__all__ = ["FOUR_ROOMS_ID", "FourRoomsEnv", "FourRoomsExpert"]
