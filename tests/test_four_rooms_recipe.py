"""The four-rooms goal recipe: a goal-mode agent on the expert data, the batched goal-reaching rollout, the
shipped pretrained agent."""

from __future__ import annotations

from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest
import torch
from helpers import tiny_config
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from tt_agents import TTAgent
from tt_agents.envs import FOUR_ROOMS_ID
from tt_agents.envs.four_rooms_expert import ScriptedExpertPolicy
from tt_agents.planner import PlanningContext
from tt_agents.pretrained import FOUR_ROOMS_DIR, four_rooms_agent
from tt_agents.pretrained.four_rooms_recipe import held_out_pairs, rollout_goal_reaching


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run much faster on one thread, and do not stall when the CPU is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def env() -> gym.Env:
    return gym.make(FOUR_ROOMS_ID)


@pytest.fixture(scope="module")
def goal_agent(four_rooms_dataset, env) -> TTAgent:
    """A tiny goal-conditioned agent trained for a few dozen steps (exercises the code, does not plan well)."""
    config = tiny_config(n_steps=40, mode="goal")
    config.data.termination_penalty = None
    return TTAgent(env.observation_space, env.action_space, config, device="cpu").fit(
        four_rooms_dataset, show_progress=False
    )


def _dict_obs(starts: np.ndarray, goals: np.ndarray) -> dict[str, np.ndarray]:
    starts, goals = np.asarray(starts, np.float32), np.asarray(goals, np.float32)
    return {"observation": starts, "achieved_goal": starts.copy(), "desired_goal": goals}


def test_goal_agent_acts_on_dict_observations(goal_agent, env) -> None:
    assert goal_agent.goal_conditioned and goal_agent.layout.goal_dim == 2
    obs, _ = env.reset(seed=0)
    goal_agent.reset()
    action = goal_agent.act(obs)
    assert action.shape == (2,) and env.action_space.contains(action)
    obs, *_ = env.step(action)
    assert env.action_space.contains(goal_agent.act(obs, goal=np.array([0.9, 0.1], dtype=np.float32)))
    with pytest.raises(TypeError, match="Dict observation"):
        goal_agent.act(obs["observation"])


def test_goal_agent_predicts_batched_and_goal_changes_the_plan(goal_agent) -> None:
    starts = np.array([[0.2, 0.8], [0.8, 0.2], [0.3, 0.3]])
    goals = np.array([[0.8, 0.8], [0.2, 0.2], [0.7, 0.9]])
    actions, state = goal_agent.predict(_dict_obs(starts, goals))
    assert actions.shape == (3, 2) and np.all(np.abs(actions) <= 1.0)
    actions, state = goal_agent.predict(_dict_obs(starts + 0.01, goals), state=state)
    assert [len(e.actions) for e in state.envs] == [1, 1, 1]

    def context(goal_rows: np.ndarray) -> PlanningContext:
        return PlanningContext(
            observations=[s[None] for s in starts],
            actions=[np.zeros((0, 2))] * 3,
            rewards=[np.zeros(0)] * 3,
            goals=goal_rows,
        )

    tokens_a, _ = goal_agent.planner.context_tokens(context(goals))
    tokens_b, _ = goal_agent.planner.context_tokens(context(goals[::-1]))
    assert not torch.equal(tokens_a[:, :2], tokens_b[:, :2]), "the goal tokens lead the planning context"
    torch.testing.assert_close(tokens_a[:, 2:], tokens_b[:, 2:])


def test_evaluate_policy_with_dict_env(goal_agent) -> None:
    venv = DummyVecEnv([lambda: Monitor(gym.make(FOUR_ROOMS_ID, max_episode_steps=4))] * 2)
    venv.seed(0)
    returns, lengths = evaluate_policy(goal_agent, venv, n_eval_episodes=2, warn=False, return_episode_rewards=True)
    assert len(returns) == 2 and all(1 <= n <= 4 for n in lengths), "SB3's loop ran on the Dict observations"


def test_goal_agent_round_trip_acts_identically(goal_agent, tmp_path) -> None:
    loaded = TTAgent.from_pretrained(goal_agent.save_pretrained(tmp_path / "goal"), device="cpu")
    assert loaded.goal_conditioned and loaded.config.planner.mode == "goal"
    obs = _dict_obs(np.array([[0.2, 0.8], [0.7, 0.1]]), np.array([[0.8, 0.8], [0.1, 0.1]]))
    for agent in (goal_agent, loaded):
        agent.seed(7)
    first, state_a = goal_agent.predict(obs)
    second, state_b = loaded.predict(obs)
    np.testing.assert_array_equal(first, second)
    obs["observation"] += 0.01
    np.testing.assert_array_equal(goal_agent.predict(obs, state_a)[0], loaded.predict(obs, state_b)[0])


def test_rollout_goal_reaching_with_the_expert() -> None:
    pairs = held_out_pairs(6, seed=5)
    assert pairs.shape == (6, 2, 2)
    np.testing.assert_array_equal(pairs, held_out_pairs(6, seed=5))
    result = rollout_goal_reaching(ScriptedExpertPolicy(noise=0.1, seed=0), pairs)
    assert result.success.all() and result.success_rate == 1.0
    for path, (start, goal), steps in zip(result.paths, pairs, result.steps, strict=True):
        assert len(path) == steps + 1
        np.testing.assert_allclose(path[0], start)
        assert np.linalg.norm(path[-1] - goal) < 0.05


def test_shipped_pretrained_agent_reaches_a_goal() -> None:
    assert (FOUR_ROOMS_DIR / "model.safetensors").is_file(), "the pretrained checkpoint ships with the package"
    size = sum(f.stat().st_size for f in FOUR_ROOMS_DIR.iterdir() if f.is_file())
    assert size <= 5 * 2**20
    agent = four_rooms_agent()
    assert agent.goal_conditioned
    pairs = np.array([[[0.15, 0.85], [0.35, 0.65]], [[0.2, 0.7], [0.8, 0.75]]])  # same room; through doorway 0
    agent.seed(0)
    result = rollout_goal_reaching(agent, pairs)
    assert result.success.all(), result.steps


def test_pretrained_agent_under_sb3_evaluate_policy() -> None:
    agent = four_rooms_agent()
    venv = DummyVecEnv([lambda: Monitor(gym.make(FOUR_ROOMS_ID))] * 4)
    venv.seed(0)
    agent.seed(0)
    returns, lengths = evaluate_policy(agent, venv, n_eval_episodes=4, return_episode_rewards=True, warn=False)
    assert len(returns) == 4
    assert max(lengths) < 100 and all(r > -100 for r in returns), "every episode reaches its goal"


def test_pretrained_agent_is_made_on_first_use_when_not_shipped(goal_agent, tmp_path, monkeypatch) -> None:
    import tt_agents.pretrained as pretrained
    import tt_agents.pretrained.four_rooms_recipe as recipe

    calls = []

    def fake_training(**kwargs) -> TTAgent:  # stands in for the ~8-minute recipe
        calls.append(kwargs)
        return goal_agent

    monkeypatch.setattr(pretrained, "FOUR_ROOMS_DIR", tmp_path / "not_shipped")
    monkeypatch.setattr(recipe, "train_four_rooms_agent", fake_training)
    monkeypatch.setenv("TT_AGENTS_CACHE", str(tmp_path / "cache"))
    agent = pretrained.four_rooms_agent(show_progress=False)
    assert (tmp_path / "cache" / "pretrained" / "four_rooms" / "model.safetensors").is_file()
    assert agent.goal_conditioned and len(calls) == 1
    pretrained.four_rooms_agent()  # cached now: no second training
    assert len(calls) == 1
