"""A continuous four-rooms goal-reaching environment (Sutton, Precup & Singh, 1999 layout).

Geometry
--------
The world is the unit square ``[0, 1]^2`` (x to the right, y up). It is the classic 11x11 four-rooms grid
scaled by ``CELL = 1/11``, with the grid's one-cell-thick walls replaced by thin walls
(``WALL_THICKNESS = 0.02``) centred on the classic wall cells:

* a vertical wall at ``x = 5.5 * CELL = 0.5``;
* a horizontal wall in the left half at ``y = 5.5 * CELL = 0.5``;
* a horizontal wall in the right half at ``y = 4.5 * CELL ~= 0.409`` (offset by one cell, as in the grid).

Each of the four wall segments has one doorway one cell wide (``DOORWAY_WIDTH = CELL``), at the classic
cells. The rooms, numbered clockwise so that doorway ``i`` joins rooms ``i`` and ``(i + 1) % 4``, are::

    +-----------+-----------+
    |           |           |
    |  0 (NW)   d0  1 (NE)  |
    |           |           |
    +-d3--------+           |
    |           +-------d1--+
    |  3 (SW)   d2  2 (SE)  |
    +-----------+-----------+

``room_of`` splits the plane at the wall centre lines, so a point inside a doorway belongs to the room on its
side of the centre line.

Dynamics
--------
A point agent; actions are 2-D velocities in ``[-1, 1]^2`` and ``position += action * MAX_SPEED * DT``
(at most ``STEP_LENGTH = 0.025`` per axis per step, so crossing a room takes about 20 steps). Walls and the
outer border block motion: the move is swept exactly against the wall rectangles, the agent stops on the
first wall face it meets and slides along it with the remaining tangential displacement. The position is
therefore always in the free space (points on a wall's surface count as free) and never crosses a wall.

Task (gymnasium-robotics goal-env conventions)
----------------------------------------------
* Observation: ``Dict(observation=Box(2), achieved_goal=Box(2), desired_goal=Box(2))``, float32 in
  ``[0, 1]``; ``observation`` and ``achieved_goal`` are the agent's position, ``desired_goal`` the goal.
* ``reset(seed, options)`` samples the start and the goal uniformly over the free space, the goal at least
  ``min_goal_distance`` from the start; ``options={"start": xy, "goal": xy}`` fixes either or both.
* Reward is sparse: ``0`` on success, ``-1`` otherwise, where success is
  ``||achieved_goal - desired_goal|| < goal_radius``; the episode terminates on success and
  ``info["is_success"]`` reports it. ``compute_reward`` and ``compute_terminated`` are vectorised over
  leading batch dimensions, as in gymnasium-robotics.
* Time limit: ``MAX_EPISODE_STEPS`` via gymnasium's ``TimeLimit`` when made through the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

CELL = 1.0 / 11.0
"""Side of one cell of the classic 11x11 grid, in world units."""
WALL_THICKNESS = 0.02
DOORWAY_WIDTH = CELL
VERTICAL_WALL_X = 5.5 * CELL
LEFT_WALL_Y = 5.5 * CELL
RIGHT_WALL_Y = 4.5 * CELL
MAX_SPEED = 0.5
DT = 0.05
STEP_LENGTH = MAX_SPEED * DT
"""Largest displacement along one axis in one step (action component of magnitude 1)."""
MAX_EPISODE_STEPS = 100
"""Time limit used at registration, with room to spare for the scripted expert's episodes."""

_H = WALL_THICKNESS / 2.0
_X = VERTICAL_WALL_X
# Interior wall rectangles ``(x0, y0, x1, y1)``. They extend past the outer border and into the vertical wall
# so that no zero-width seam (along which a point on a wall surface could slide through) exists where two
# walls meet.
_INTERIOR_WALLS: tuple[tuple[float, float, float, float], ...] = (
    (_X - _H, -1.0, _X + _H, 1 * CELL),  # vertical wall, below the south doorway
    (_X - _H, 2 * CELL, _X + _H, 8 * CELL),  # vertical wall, between the doorways
    (_X - _H, 9 * CELL, _X + _H, 2.0),  # vertical wall, above the north doorway
    (-1.0, LEFT_WALL_Y - _H, 1 * CELL, LEFT_WALL_Y + _H),  # left wall, west of its doorway
    (2 * CELL, LEFT_WALL_Y - _H, _X, LEFT_WALL_Y + _H),  # left wall, east of its doorway
    (_X, RIGHT_WALL_Y - _H, 8 * CELL, RIGHT_WALL_Y + _H),  # right wall, west of its doorway
    (9 * CELL, RIGHT_WALL_Y - _H, 2.0, RIGHT_WALL_Y + _H),  # right wall, east of its doorway
)
_BORDER_WALLS: tuple[tuple[float, float, float, float], ...] = (
    (-1.0, -1.0, 0.0, 2.0),
    (1.0, -1.0, 2.0, 2.0),
    (-1.0, -1.0, 2.0, 0.0),
    (-1.0, 1.0, 2.0, 2.0),
)
_COLLISION_WALLS = _INTERIOR_WALLS + _BORDER_WALLS


@dataclass(frozen=True)
class Doorway:
    """A doorway: an opening ``DOORWAY_WIDTH`` wide in a wall ``WALL_THICKNESS`` thick.

    ``axis`` is the axis the doorway is crossed along (0: a doorway in the vertical wall, crossed in x;
    1: a doorway in a horizontal wall, crossed in y). ``negative_room`` lies on the side of smaller
    coordinate along ``axis``, ``positive_room`` on the other side.
    """

    centre: tuple[float, float]
    axis: int
    negative_room: int
    positive_room: int

    def side(self, room: int) -> float:
        """``-1.0`` if ``room`` is on the negative side of the doorway, ``+1.0`` if on the positive side."""
        if room == self.negative_room:
            return -1.0
        if room == self.positive_room:
            return 1.0
        raise ValueError(f"room {room} is not joined by this doorway")

    def approach_point(self, room: int, offset: float) -> np.ndarray:
        """The point ``offset`` from the doorway's centre, on ``room``'s side, along the crossing axis."""
        point = np.array(self.centre, dtype=np.float64)
        point[self.axis] += self.side(room) * offset
        return point

    def contains(self, point: np.ndarray) -> bool:
        """Whether ``point`` lies inside the doorway's opening (the gap within the wall's thickness)."""
        along = abs(float(point[self.axis]) - self.centre[self.axis])
        lateral = abs(float(point[1 - self.axis]) - self.centre[1 - self.axis])
        return along <= _H and lateral <= DOORWAY_WIDTH / 2.0


DOORWAYS: tuple[Doorway, ...] = (
    Doorway(centre=(_X, 8.5 * CELL), axis=0, negative_room=0, positive_room=1),
    Doorway(centre=(8.5 * CELL, RIGHT_WALL_Y), axis=1, negative_room=2, positive_room=1),
    Doorway(centre=(_X, 1.5 * CELL), axis=0, negative_room=3, positive_room=2),
    Doorway(centre=(1.5 * CELL, LEFT_WALL_Y), axis=1, negative_room=3, positive_room=0),
)
"""Doorway ``i`` joins rooms ``i`` and ``(i + 1) % 4``."""


def _entry(
    x: float, y: float, dx: float, dy: float, wall: tuple[float, float, float, float]
) -> tuple[float, int, float] | None:
    """First contact of the segment ``(x, y) + t (dx, dy)``, ``t in [0, 1]``, with the open box ``wall``.

    Returns ``(t, axis, face)``: the contact time, the axis whose face is hit, and that face's coordinate;
    ``None`` if the segment does not enter the rectangle's interior (touching its boundary is allowed).
    """
    t_in, t_out, axis, face = -np.inf, np.inf, -1, 0.0
    for k, (p, d, lo, hi) in enumerate(((x, dx, wall[0], wall[2]), (y, dy, wall[1], wall[3]))):
        if d == 0.0:
            if not lo < p < hi:
                return None
            continue
        near, far = (lo, hi) if d > 0.0 else (hi, lo)
        t_near, t_far = (near - p) / d, (far - p) / d
        if t_near > t_in:
            t_in, axis, face = t_near, k, near
        t_out = min(t_out, t_far)
    if axis < 0 or t_in >= t_out or t_in >= 1.0 or t_out <= 0.0:
        return None
    return max(t_in, 0.0), axis, face


def _first_contact(x: float, y: float, dx: float, dy: float) -> tuple[float, int, float] | None:
    """The earliest wall contact of a move, over all walls (interior and border), or ``None``."""
    best = None
    for wall in _COLLISION_WALLS:
        hit = _entry(x, y, dx, dy, wall)
        if hit is not None and (best is None or hit[0] < best[0]):
            best = hit
    return best


class FourRoomsEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """Continuous four-rooms goal reaching with a point agent; see the module docstring for the details.

    Args:
        render_mode: ``None`` or ``"rgb_array"``.
        goal_radius: success when the agent is closer than this to the goal.
        min_goal_distance: sampled goals are at least this far (Euclidean) from the start; in ``[0, 0.5]``.
        render_size: side in pixels of the square ``rgb_array`` frames.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    max_speed = MAX_SPEED
    dt = DT

    def __init__(
        self,
        render_mode: str | None = None,
        goal_radius: float = 0.05,
        min_goal_distance: float = 0.2,
        render_size: int = 256,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if not 0.0 < goal_radius < 0.5:
            raise ValueError(f"goal_radius must be in (0, 0.5), got {goal_radius}")
        if not 0.0 <= min_goal_distance <= 0.5:
            raise ValueError(f"min_goal_distance must be in [0, 0.5], got {min_goal_distance}")
        if render_size < 16:
            raise ValueError(f"render_size must be >= 16, got {render_size}")
        self.render_mode = render_mode
        self.goal_radius = float(goal_radius)
        self.min_goal_distance = float(min_goal_distance)
        self.render_size = int(render_size)
        box = spaces.Box(low=0.0, high=1.0, shape=(2,), dtype=np.float32)
        self.observation_space = spaces.Dict({"observation": box, "achieved_goal": box, "desired_goal": box})
        self.action_space = spaces.Box(low=-1.0, high=1.0, shape=(2,), dtype=np.float32)
        self._position: np.ndarray | None = None
        self._goal: np.ndarray | None = None
        self._background: np.ndarray | None = None

    @property
    def position(self) -> np.ndarray | None:
        """The agent's exact (float64) position, or ``None`` before the first reset."""
        return None if self._position is None else self._position.copy()

    @property
    def goal(self) -> np.ndarray | None:
        """The exact (float64) goal, or ``None`` before the first reset."""
        return None if self._goal is None else self._goal.copy()

    # ----------------------------------------------------------------------------------------------- geometry
    @property
    def wall_rects(self) -> np.ndarray:
        """Interior wall rectangles clipped to [0, 1]^2: shape ``(7, 4)``, rows ``(x0, y0, x1, y1)``."""
        return np.clip(np.array(_INTERIOR_WALLS, dtype=np.float64), 0.0, 1.0)

    @property
    def doorway_centres(self) -> np.ndarray:
        """Centres of the doorways, shape ``(4, 2)``; doorway ``i`` joins rooms ``i`` and ``(i + 1) % 4``."""
        return np.array([door.centre for door in DOORWAYS], dtype=np.float64)

    @staticmethod
    def is_free(point: Any) -> bool | np.ndarray:
        """Whether points (shape ``(..., 2)``) are in the free space: inside the square and outside all walls.

        Points on a wall's surface are free. Returns a ``bool`` for a single point, else a boolean array of
        shape ``point.shape[:-1]``.
        """
        pts = np.asarray(point, dtype=np.float64)
        x, y = pts[..., 0], pts[..., 1]
        free = np.isfinite(x) & np.isfinite(y) & (x >= 0.0) & (x <= 1.0) & (y >= 0.0) & (y <= 1.0)
        for x0, y0, x1, y1 in _INTERIOR_WALLS:
            free &= ~((x > x0) & (x < x1) & (y > y0) & (y < y1))
        return bool(free) if free.ndim == 0 else free

    @staticmethod
    def room_of(point: Any) -> int | np.ndarray:
        """Room index (0 NW, 1 NE, 2 SE, 3 SW) of points (shape ``(..., 2)``), split at the wall centre lines.

        Returns an ``int`` for a single point, else an integer array of shape ``point.shape[:-1]``.
        """
        pts = np.asarray(point, dtype=np.float64)
        x, y = pts[..., 0], pts[..., 1]
        left = x < VERTICAL_WALL_X
        rooms = np.where(left, np.where(y >= LEFT_WALL_Y, 0, 3), np.where(y >= RIGHT_WALL_Y, 1, 2))
        return int(rooms) if rooms.ndim == 0 else rooms

    @staticmethod
    def segment_is_free(start: Any, end: Any) -> bool:
        """Whether the straight segment between two free points avoids the interiors of all walls."""
        x, y = (float(v) for v in start)
        ex, ey = (float(v) for v in end)
        return _first_contact(x, y, ex - x, ey - y) is None

    @staticmethod
    def move(position: Any, displacement: Any) -> np.ndarray:
        """Move a free point by ``displacement``, stopping at walls and sliding along them.

        The straight move is swept against every wall; at the first contact the point is placed on the wall
        face, the displacement component normal to that face is dropped, and the remainder is swept again
        (at most twice more, since each contact removes one axis). The result is always a free point.
        """
        x, y = (float(v) for v in position)
        dx, dy = (float(v) for v in displacement)
        start = (x, y)
        for _ in range(3):
            hit = _first_contact(x, y, dx, dy)
            if hit is None:
                x, y = x + dx, y + dy
                break
            t, axis, face = hit
            x, y = x + t * dx, y + t * dy
            dx, dy = (1.0 - t) * dx, (1.0 - t) * dy
            if axis == 0:
                x, dx = face, 0.0
            else:
                y, dy = face, 0.0
        result = np.array((x, y), dtype=np.float64)
        # Guard against floating-point corner cases: never accept a non-free end point.
        return result if FourRoomsEnv.is_free(result) else np.array(start, dtype=np.float64)

    # ----------------------------------------------------------------------------------------------- task API
    def compute_reward(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray:
        """Sparse reward, ``0`` where ``||achieved_goal - desired_goal|| < goal_radius`` else ``-1``.

        Vectorised over leading dimensions (``info`` is unused and may be a dict or a sequence of dicts).
        """
        return -(~self.compute_terminated(achieved_goal, desired_goal, info)).astype(np.float64)

    def compute_terminated(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray:
        """Success (and termination) flags ``||achieved_goal - desired_goal|| < goal_radius``, vectorised."""
        achieved = np.asarray(achieved_goal, dtype=np.float64)
        desired = np.asarray(desired_goal, dtype=np.float64)
        return np.linalg.norm(achieved - desired, axis=-1) < self.goal_radius

    def _observation(self) -> dict[str, np.ndarray]:
        assert self._position is not None and self._goal is not None
        position = self._position.astype(np.float32)
        return {
            "observation": position,
            "achieved_goal": position.copy(),
            "desired_goal": self._goal.astype(np.float32),
        }

    def _option_point(self, options: dict[str, Any], key: str) -> np.ndarray | None:
        value = options.get(key)
        if value is None:
            return None
        point = np.asarray(value, dtype=np.float64)
        if point.shape != (2,) or not self.is_free(point):
            raise ValueError(f"options[{key!r}] must be a free point of shape (2,), got {value!r}")
        return point.copy()

    def _sample_free(self, away_from: np.ndarray | None = None) -> np.ndarray:
        """A uniform free point, at least ``min_goal_distance`` from ``away_from`` when given."""
        while True:
            candidates = self.np_random.uniform(0.0, 1.0, size=(64, 2))
            ok = self.is_free(candidates)
            if away_from is not None:
                ok &= np.linalg.norm(candidates - away_from, axis=-1) >= self.min_goal_distance
            if ok.any():
                return candidates[int(np.argmax(ok))]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start a new episode.

        ``options`` may hold ``"start"`` and/or ``"goal"`` (free points of shape ``(2,)``); the missing ones
        are sampled uniformly over the free space, a sampled one at least ``min_goal_distance`` from the
        other. A given pair must be at least ``goal_radius`` apart. Raises ``ValueError`` on invalid options.
        """
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"start", "goal"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; expected 'start' and/or 'goal'")
        start, goal = self._option_point(options, "start"), self._option_point(options, "goal")
        if start is None:
            start = self._sample_free(away_from=goal)
        if goal is None:
            goal = self._sample_free(away_from=start)
        if np.linalg.norm(start - goal) < self.goal_radius:
            raise ValueError(f"start {start} is already within goal_radius={self.goal_radius} of goal {goal}")
        self._position, self._goal = start, goal
        return self._observation(), {"is_success": False}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Move by ``clip(action, -1, 1) * STEP_LENGTH``; reward 0 and terminate on success, else -1."""
        if self._position is None:
            raise RuntimeError("FourRoomsEnv.step() called before reset()")
        act = np.asarray(action, dtype=np.float64)
        if act.shape != (2,) or not np.all(np.isfinite(act)):
            raise ValueError(f"action must be a finite array of shape (2,), got {action!r}")
        self._position = self.move(self._position, np.clip(act, -1.0, 1.0) * STEP_LENGTH)
        obs = self._observation()
        success = bool(self.compute_terminated(obs["achieved_goal"], obs["desired_goal"], None))
        info = {"is_success": success}
        reward = float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], info))
        return obs, reward, success, False, info

    # -------------------------------------------------------------------------------------------- rendering
    def _pixel_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """World coordinates of the pixel centres, each of shape ``(H, W)`` (row 0 is the top, y = 1)."""
        centres = (np.arange(self.render_size) + 0.5) / self.render_size
        return np.meshgrid(centres, 1.0 - centres)

    def render(self) -> np.ndarray | None:
        """An ``(H, W, 3)`` uint8 frame (walls dark grey, goal green, agent red) in ``rgb_array`` mode."""
        if self.render_mode is None:
            gym.logger.warn("FourRoomsEnv.render() needs render_mode='rgb_array'; returning None")
            return None
        xs, ys = self._pixel_grid()
        if self._background is None:
            background = np.full((self.render_size, self.render_size, 3), 245, dtype=np.uint8)
            for x0, y0, x1, y1 in self.wall_rects:
                background[(xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)] = (60, 60, 60)
            self._background = background
        frame = self._background.copy()
        if self._goal is not None:
            frame[(xs - self._goal[0]) ** 2 + (ys - self._goal[1]) ** 2 <= self.goal_radius**2] = (
                80,
                200,
                80,
            )
        if self._position is not None:
            radius = max(0.015, 1.5 / self.render_size)
            frame[(xs - self._position[0]) ** 2 + (ys - self._position[1]) ** 2 <= radius**2] = (220, 40, 40)
        return frame
