"""The scripted MiniGrid expert: shortest paths through closed doors on procedurally generated maps."""

from __future__ import annotations

import gymnasium as gym
import minigrid  # noqa: F401  (registers the MiniGrid environments)
import numpy as np
import pytest

from tt_agents.envs.minigrid_expert import MiniGridExpertPolicy, NoPathError, expert_action, shortest_plan

MULTIROOM = "MiniGrid-MultiRoom-N4-S5-v1"  # the paper's Appendix F map (v0 of this id makes six rooms)


def run_episode(env: gym.Env, policy) -> tuple[bool, int]:
    env_steps = 0
    while True:
        _, reward, terminated, truncated, _ = env.step(policy())
        env_steps += 1
        if terminated or truncated:
            return terminated and reward > 0, env_steps


@pytest.mark.parametrize("env_id", [MULTIROOM, "MiniGrid-MultiRoom-N6-v0", "MiniGrid-FourRooms-v0"])
def test_the_expert_reaches_the_goal_in_exactly_its_planned_number_of_actions(env_id) -> None:
    env = gym.make(env_id)
    for seed in range(10):
        env.reset(seed=seed)
        planned, _ = shortest_plan(env)
        reached, n_actions = run_episode(env, lambda: expert_action(env))
        assert reached, f"{env_id} seed {seed}: the expert did not reach the goal"
        assert n_actions == planned, f"{env_id} seed {seed}: {n_actions} actions for a {planned}-action plan"


def test_the_expert_opens_closed_doors_on_its_way() -> None:
    env = gym.make(MULTIROOM)
    env.reset(seed=0)
    actions = []
    while True:
        actions.append(expert_action(env))
        _, _, terminated, truncated, _ = env.step(actions[-1])
        if terminated or truncated:
            break
    assert actions.count(5) >= 3  # four rooms in a chain: three doors, all closed at the start


def test_the_expert_refuses_a_map_it_cannot_cross() -> None:
    env = gym.make(MULTIROOM)
    env.reset(seed=0)
    base = env.unwrapped
    for x in range(base.grid.width):
        for y in range(base.grid.height):
            cell = base.grid.get(x, y)
            if cell is not None and cell.type == "door":
                cell.is_locked = True
    with pytest.raises(NoPathError, match="no path"):
        expert_action(env)


def test_the_mixed_policy_takes_random_actions_at_the_asked_rate_and_checks_it() -> None:
    env = gym.make(MULTIROOM)
    env.reset(seed=1)
    expert = expert_action(env)
    policy = MiniGridExpertPolicy(env, random_fraction=0.5, seed=0)
    actions = np.array([int(policy.predict(None)[0]) for _ in range(2000)])
    other = (actions != expert).mean()  # a random action differs from the expert's with probability 6/7
    assert abs(other - 0.5 * 6 / 7) < 0.04
    assert int(MiniGridExpertPolicy(env).predict(None)[0]) == expert
    with pytest.raises(ValueError, match="random_fraction"):
        MiniGridExpertPolicy(env, random_fraction=1.5)
