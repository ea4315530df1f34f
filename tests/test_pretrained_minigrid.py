"""The shipped MiniGrid-MultiRoom agent (tt_agents.pretrained.minigrid_agent): small, loads without training and
reaches goals on maps its data never held."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from tt_agents.pretrained import MINIGRID_DIR, minigrid_agent, minigrid_env

HELD_OUT = range(1_000_000, 1_000_006)
"""Reset seeds of the example's held-out maps for seed 0 (none in its data)."""


def test_the_shipped_minigrid_agent_reaches_goals_on_held_out_maps(one_torch_thread) -> None:
    size = sum(f.stat().st_size for f in MINIGRID_DIR.iterdir() if f.is_file())
    assert size <= 2 * 2**20
    agent, env = minigrid_agent(), minigrid_env()
    assert agent.goal_conditioned and isinstance(env.action_space, spaces.Discrete)
    assert agent.config.model.map_per_step and agent.config.model.map_shape == env.observation_space["map"].shape
    agent.seed(0)
    reached = []
    for seed in HELD_OUT:
        obs, _ = env.reset(seed=seed)
        agent.reset()
        for _ in range(env.unwrapped.max_steps):
            obs, _, terminated, truncated, info = env.step(int(agent.act(obs)))
            if terminated or truncated:
                break
        reached.append(info["is_success"])
    env.close()
    assert np.sum(reached) >= len(HELD_OUT) - 1, reached
