"""Pretrained agents shipped with ``tt_agents`` (or made on first use).

:func:`four_rooms_agent` is the goal-conditioned Trajectory Transformer of ``examples/four_rooms_goal.py`` for
``tt_agents/FourRooms-v0``::

    import gymnasium as gym
    import tt_agents.envs  # registers tt_agents/FourRooms-v0
    from tt_agents.pretrained import four_rooms_agent

    agent = four_rooms_agent()
    env = gym.make("tt_agents/FourRooms-v0")
    obs, info = env.reset(seed=0)
    agent.reset()
    while True:
        obs, reward, terminated, truncated, info = env.step(agent.act(obs))
        if terminated or truncated:
            break
    print(info["is_success"])

:func:`minigrid_agent` is the goal-conditioned agent of ``examples/minigrid_goal.py --seed 0`` for MiniGrid's
MultiRoom-N4-S5 maps (paper Appendix F), acting in :func:`minigrid_env` (the 11 x 11 view around the agent, the goal
drawn in it where it lies); it is shipped, and remade by that command.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from ..agent import TrajectoryTransformerAgent
from ..checkpoints import CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE
from ..data_making.minigrid import MULTIROOM_ID
from ..envs.minigrid_goal import MiniGridGoalEnv

PACKAGE_DIR = Path(__file__).resolve().parent
FOUR_ROOMS_DIR = PACKAGE_DIR / "four_rooms"
"""The checkpoint shipped inside the package (``config.json``, ``tokenizer.json``, ``model.safetensors``)."""
MINIGRID_DIR = PACKAGE_DIR / "minigrid_multiroom"
"""The MiniGrid-MultiRoom-N4-S5 checkpoint shipped inside the package."""
CACHE_ENV = "TT_AGENTS_CACHE"
"""Environment variable overriding the cache root (default ``~/.cache/tt_agents``)."""


def cache_dir() -> Path:
    """Where checkpoints made on first use are kept: ``$TT_AGENTS_CACHE/pretrained`` or
    ``~/.cache/tt_agents/pretrained``."""
    root = os.environ.get(CACHE_ENV)
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "tt_agents") / "pretrained"


def _is_checkpoint(path: Path) -> bool:
    return all((path / name).is_file() for name in (CONFIG_FILE, TOKENIZER_FILE, MODEL_FILE))


def four_rooms_agent(
    path: str | os.PathLike[str] | None = None, device: str = "cpu", show_progress: bool = True
) -> TrajectoryTransformerAgent:
    """The pretrained goal-conditioned four-rooms agent (``planner.mode == "goal"``, Dict observations).

    Looks in order at ``path`` (when given: a checkpoint directory, made there if missing), the checkpoint
    shipped in the package (``tt_agents/pretrained/four_rooms/``), and the cache
    (:func:`cache_dir` ``/ "four_rooms"``). When none holds a checkpoint, it is made on first use by the
    example's recipe (:func:`tt_agents.pretrained.four_rooms_recipe.train_four_rooms_agent`: record the expert
    dataset, train) and saved there for next time.

    Args:
        path: a checkpoint directory to load, or to make the checkpoint in.
        device: torch device of the loaded agent.
        show_progress: progress bars while making the checkpoint.
    """
    if path is not None:
        target = Path(path)
    elif _is_checkpoint(FOUR_ROOMS_DIR):
        target = FOUR_ROOMS_DIR
    else:
        target = cache_dir() / "four_rooms"
    if not _is_checkpoint(target):
        from .four_rooms_recipe import train_four_rooms_agent

        train_four_rooms_agent(show_progress=show_progress).save_pretrained(target)
    return TrajectoryTransformerAgent.from_pretrained(target, device=device)


def minigrid_env() -> MiniGridGoalEnv:
    """The environment :func:`minigrid_agent` acts in: ``MiniGrid-MultiRoom-N4-S5-v1`` as a goal task, a new map
    every reset, with the 11 x 11 view around the agent and the goal drawn in it (``view="local"``,
    ``goal_in_view=True``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # minigrid warns that a newer MultiRoom version exists
        return MiniGridGoalEnv(MULTIROOM_ID, view="local", goal_in_view=True)


def minigrid_agent(device: str = "cpu") -> TrajectoryTransformerAgent:
    """The pretrained goal-conditioned MiniGrid-MultiRoom-N4-S5 agent (discrete actions, a map context), for
    :func:`minigrid_env`: the checkpoint of ``python examples/minigrid_goal.py --seed 0``, shipped in
    ``tt_agents/pretrained/minigrid_multiroom/`` (its measured goal-reaching rate on held-out maps is in the
    project's ``benchmarks/results/minigrid``).

    Args:
        device: torch device of the loaded agent.
    """
    return TrajectoryTransformerAgent.from_pretrained(MINIGRID_DIR, device=device)


__all__ = ["FOUR_ROOMS_DIR", "MINIGRID_DIR", "cache_dir", "four_rooms_agent", "minigrid_agent", "minigrid_env"]
