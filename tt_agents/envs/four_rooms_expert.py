"""A scripted, noisy goal-reaching expert for :class:`~tt_agents.envs.four_rooms.FourRoomsEnv`.

The expert is stateless (it reads only the current observation):

1. Plan the room path. The rooms form a 4-cycle joined by the doorways, so the shortest room path is the
   direction round the cycle with fewer doorways; for opposite rooms (two doorways either way) the route
   with the shorter Euclidean length through the doorway centres is taken.
2. Pick a waypoint. In the goal's room the waypoint is the goal. Otherwise it is the next doorway's
   approach point on the near side (``APPROACH_OFFSET`` in front of the doorway's centre, along the
   crossing axis); once the agent is lined up with the doorway (within ``LATERAL_TOLERANCE`` of its centre
   line and no farther than the approach point) or inside the opening, the waypoint becomes the approach
   point on the far side, so the agent passes straight through the middle of the doorway.
   Points inside a doorway opening may not see the waypoint in a straight line: from inside an opening
   the agent first steps out to the opening's approach point in its room, and a goal inside an opening is
   reached through the opening's approach point.
3. Steer at full speed towards the waypoint (unit-norm action), slowing down proportionally within one step
   of it, add Gaussian noise of standard deviation ``noise`` and clip to ``[-1, 1]``.

:class:`ScriptedExpertPolicy` puts the expert behind Stable-Baselines3's ``predict``, so it is evaluated like any
agent.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from .four_rooms import DOORWAYS, Doorway, FourRoomsEnv

APPROACH_OFFSET = 0.05
"""Distance of the approach points in front of and behind a doorway's centre."""
LATERAL_TOLERANCE = 0.02
"""How far off a doorway's centre line the agent may be and still head straight through it."""


def doorway_between(room_a: int, room_b: int) -> Doorway:
    """The doorway joining two adjacent rooms."""
    for door in DOORWAYS:
        if {door.negative_room, door.positive_room} == {room_a, room_b}:
            return door
    raise ValueError(f"rooms {room_a} and {room_b} are not adjacent")


def _doorway_containing(point: np.ndarray) -> Doorway | None:
    for door in DOORWAYS:
        if door.contains(point):
            return door
    return None


class FourRoomsExpert:
    """Noisy shortest-route expert: ``action = expert(observation)``.

    Args:
        env_or_unwrapped: a ``FourRoomsEnv`` or any wrapper around one.
        noise: standard deviation of the Gaussian noise added to each action component.
        seed: seed of the noise generator.
    """

    def __init__(self, env_or_unwrapped: gym.Env, noise: float = 0.1, seed: int = 0) -> None:
        env = env_or_unwrapped.unwrapped
        if not isinstance(env, FourRoomsEnv):
            raise TypeError(f"FourRoomsExpert needs a FourRoomsEnv, got {type(env).__name__}")
        if noise < 0.0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        self.env = env
        self.noise = float(noise)
        self._step_length = env.max_speed * env.dt
        self._rng = np.random.default_rng(seed)

    def __call__(self, observation: dict[str, Any]) -> np.ndarray:
        """The action (float32, shape ``(2,)``, in ``[-1, 1]``) for a goal-env observation dict."""
        position = np.asarray(observation["observation"], dtype=np.float64)
        goal = np.asarray(observation["desired_goal"], dtype=np.float64)
        offset = self.waypoint(position, goal) - position
        action = offset / max(float(np.linalg.norm(offset)), self._step_length)
        if self.noise > 0.0:
            action = action + self._rng.normal(0.0, self.noise, size=2)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def room_path(self, position: np.ndarray, goal: np.ndarray) -> list[int]:
        """Rooms visited on the shortest route from ``position`` to ``goal``, both ends included."""
        start, end = self.env.room_of(position), self.env.room_of(goal)
        clockwise = (end - start) % 4
        if clockwise == 0:
            return [start]
        routes = [
            [(start + i) % 4 for i in range(clockwise + 1)],
            [(start - i) % 4 for i in range(4 - clockwise + 1)],
        ]
        fewest = min(len(route) for route in routes)
        return min(
            (route for route in routes if len(route) == fewest),
            key=lambda route: self._route_length(route, position, goal),
        )

    @staticmethod
    def _route_length(route: list[int], position: np.ndarray, goal: np.ndarray) -> float:
        doors = [doorway_between(a, b) for a, b in zip(route[:-1], route[1:], strict=True)]
        points = [position, *(np.asarray(door.centre) for door in doors), goal]
        return float(sum(np.linalg.norm(q - p) for p, q in zip(points[:-1], points[1:], strict=True)))

    def waypoint(self, position: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """The point the expert currently steers towards (noise-free)."""
        route = self.room_path(position, goal)
        room = route[0]
        if len(route) == 1:
            target = goal
            goal_door = _doorway_containing(goal)
            if goal_door is not None and not self.env.segment_is_free(position, goal):
                target = goal_door.approach_point(room, APPROACH_OFFSET)
        else:
            door = doorway_between(route[0], route[1])
            along = door.side(room) * (position[door.axis] - door.centre[door.axis])
            lateral = abs(position[1 - door.axis] - door.centre[1 - door.axis])
            lined_up = lateral <= LATERAL_TOLERANCE and along <= APPROACH_OFFSET + self._step_length
            if lined_up or door.contains(position):
                target = door.approach_point(route[1], APPROACH_OFFSET)
            else:
                target = door.approach_point(room, APPROACH_OFFSET)
        current_door = _doorway_containing(position)
        if current_door is not None and not self.env.segment_is_free(position, target):
            target = current_door.approach_point(room, APPROACH_OFFSET)
        return target


class ScriptedExpertPolicy:
    """:class:`FourRoomsExpert` behind the SB3 ``predict`` contract (single or batched Dict observations)."""

    def __init__(self, noise: float = 0.1, seed: int = 0) -> None:
        self.expert = FourRoomsExpert(FourRoomsEnv(), noise=noise, seed=seed)

    def predict(
        self,
        observation: dict[str, np.ndarray],
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """Actions (2,) or (n_envs, 2) for the observation(s)."""
        obs = np.asarray(observation["observation"])
        if obs.ndim == 1:
            return self.expert(observation), None
        rows = [{k: np.asarray(observation[k])[i] for k in ("observation", "desired_goal")} for i in range(len(obs))]
        return np.stack([self.expert(row) for row in rows]), None
