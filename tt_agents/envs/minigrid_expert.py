"""A scripted shortest-path expert for MiniGrid maps with doors (paper Appendix F's data policy).

The expert reads the full grid of a MiniGrid environment (``env.unwrapped``), not the agent's partial view, and
replans at every step: a Dijkstra search over (cell, direction) states where turning left or right and moving
forward cost one action each and moving into a closed, unlocked door costs two (``toggle`` opens it, then
``forward``). Its action is the first of a shortest action sequence to the goal. Locked doors and keys are not
handled: the expert is for maps whose doors open with ``toggle`` (MultiRoom, FourRooms, the empty and door maps).

:func:`expert_action` is the expert; :class:`MiniGridExpertPolicy` mixes it with uniformly random actions (the
appendix records a mixture) behind Stable-Baselines3's ``predict``.
"""

from __future__ import annotations

import heapq
from typing import Any

import gymnasium as gym
import numpy as np

LEFT, RIGHT, FORWARD, TOGGLE = 0, 1, 2, 5
"""MiniGrid's action ids for turning, moving forward and opening a door."""
DIRECTIONS = ((1, 0), (0, 1), (-1, 0), (0, -1))
"""The cell step of each agent direction (MiniGrid's ``DIR_TO_VEC``: right, down, left, up)."""


class NoPathError(RuntimeError):
    """The goal cannot be reached from the agent's cell (a wall or a locked door in the way)."""


def _cell_cost(grid: Any, x: int, y: int) -> int | None:
    """Actions it takes to move forward into cell (x, y): 1 if free, 2 for a closed unlocked door, None if
    blocked."""
    cell = grid.get(x, y)
    if cell is None or cell.type in ("goal", "floor"):
        return 1
    if cell.type == "door" and not cell.is_locked:
        return 1 if cell.is_open else 2
    return None


def _goal_cell(grid: Any) -> tuple[int, int]:
    for x in range(grid.width):
        for y in range(grid.height):
            cell = grid.get(x, y)
            if cell is not None and cell.type == "goal":
                return x, y
    raise NoPathError("the map has no goal cell")


def shortest_plan(env: gym.Env) -> tuple[int, int]:
    """The length (in actions) of a shortest action sequence from the agent's state to the goal of ``env`` (a
    MiniGrid environment, wrapped or not) and its first action. Raises :class:`NoPathError` when no path exists;
    ``(0, -1)`` when the agent stands on the goal."""
    base = env.unwrapped
    grid = base.grid
    goal = _goal_cell(grid)
    start = (int(base.agent_pos[0]), int(base.agent_pos[1]), int(base.agent_dir))
    # Dijkstra over (x, y, direction); each entry carries the first action taken from the start
    frontier: list[tuple[int, int, tuple[int, int, int], int]] = [(0, 0, start, -1)]
    seen: set[tuple[int, int, int]] = set()
    order = 1  # ties broken by insertion order, so the search is deterministic
    while frontier:
        cost, _, state, first = heapq.heappop(frontier)
        if state in seen:
            continue
        seen.add(state)
        x, y, d = state
        if (x, y) == goal:
            return cost, first
        dx, dy = DIRECTIONS[d]
        moves = [(1, (x, y, (d - 1) % 4), LEFT), (1, (x, y, (d + 1) % 4), RIGHT)]
        step = _cell_cost(grid, x + dx, y + dy)
        if step is not None:  # a closed door is opened first
            moves.append((step, (x + dx, y + dy, d), TOGGLE if step == 2 else FORWARD))
        for step_cost, nxt, action in moves:
            if nxt not in seen:
                heapq.heappush(frontier, (cost + step_cost, order, nxt, action if first < 0 else first))
                order += 1
    raise NoPathError(f"no path from {start[:2]} to the goal {goal}")


def expert_action(env: gym.Env) -> int:
    """The expert's action: the first of a shortest action sequence to the goal (see :func:`shortest_plan`)."""
    return shortest_plan(env)[1]


class MiniGridExpertPolicy:
    """The shortest-path expert of one MiniGrid environment, taking a uniformly random action with probability
    ``random_fraction``, behind SB3's ``predict`` (it reads the environment, not the observation).

    Args:
        env: the environment the expert acts in (it reads ``env.unwrapped``'s grid and agent state).
        random_fraction: probability of a uniformly random action instead of the expert's, in [0, 1].
        seed: seed of the random choices.
    """

    def __init__(self, env: gym.Env, random_fraction: float = 0.0, seed: int | None = None) -> None:
        if not 0.0 <= random_fraction <= 1.0:
            raise ValueError(f"MiniGridExpertPolicy: random_fraction must be in [0, 1], got {random_fraction}")
        self.env = env
        self.random_fraction = random_fraction
        self.rng = np.random.default_rng(seed)

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, None]:
        """The action of the environment's current state (``observation`` is not read)."""
        if self.rng.random() < self.random_fraction:
            return np.asarray(self.rng.integers(self.env.action_space.n)), None
        return np.asarray(expert_action(self.env)), None
