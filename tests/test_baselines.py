"""Tests of tt_agents.baselines: behaviour cloning and IQL on small in-memory datasets."""

from __future__ import annotations

from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
import torch
from helpers import ENV_ID, pendulum_episodes
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from tt_agents.baselines import (
    BCAgent,
    GoalBCAgent,
    IQLAgent,
    IQLConfig,
    expectile_loss,
    transitions_from_episodes,
)
from tt_agents.data_loading import Episode, load_episodes
from tt_agents.envs import FOUR_ROOMS_ID, FourRoomsExpert

TINY = (32, 32)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks run much faster on one thread on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data() -> list[Episode]:
    """Balanced episodes (return 60) and noisy ones that fall early: returns spread for reward scaling."""
    episodes = pendulum_episodes(n_episodes=6, steps=60, noise=0.5) + pendulum_episodes(4, 60, noise=4.0, seed=10)
    return load_episodes(episodes)


@pytest.fixture(scope="module")
def spaces() -> tuple[gym.spaces.Box, gym.spaces.Box]:
    env = gym.make(ENV_ID)
    return env.observation_space, env.action_space


def mean(values: list[float]) -> float:
    return float(np.mean(values))


def test_transitions_next_observations_terminals_and_dimension_checks():
    obs = np.arange(12, dtype=np.float32).reshape(4, 3)  # T + 1 rows: the last is the final observation
    truncated = Episode(obs, np.zeros((3, 1)), np.ones(3), terminated=False)
    terminal = Episode(obs[:3], np.zeros((3, 1)), np.ones(3), terminated=True)
    no_final = Episode(obs[:3], np.zeros((3, 1)), np.full(3, 2.0), terminated=False)
    data = transitions_from_episodes([truncated, terminal, no_final], 3, 1, need_next=True)
    np.testing.assert_array_equal(data.next_observations[:3], obs[1:])  # final_observation used at the end
    np.testing.assert_array_equal(data.terminals, [0, 0, 0, 0, 0, 1, 0, 0])  # last step of no_final is dropped
    assert len(data.rewards) == 8
    np.testing.assert_array_equal(data.episode_returns, [3.0, 3.0, 6.0])
    assert len(transitions_from_episodes([no_final], 3, 1, need_next=False).rewards) == 3  # BC keeps every step
    with pytest.raises(ValueError, match="observation size 3 and action size 1.*have 4 and 1"):
        transitions_from_episodes([terminal], 4, 1, need_next=False)


def test_expectile_loss_matches_a_hand_computation():
    diff = torch.tensor([2.0, -1.0, 0.5, -3.0])
    expected = (0.7 * 4.0 + 0.3 * 1.0 + 0.7 * 0.25 + 0.3 * 9.0) / 4  # = 1.49375
    assert expectile_loss(diff, 0.7).item() == pytest.approx(expected)
    assert expectile_loss(diff, 0.5).item() == pytest.approx(0.5 * diff.square().mean().item())


def test_bc_learns_predicts_like_sb3_and_round_trips(data, spaces, tmp_path):
    agent = BCAgent(*spaces, hidden=TINY, learning_rate=3e-3, device="cpu")
    agent.fit(data, n_steps=150, batch_size=64, show_progress=False)
    losses = [h["loss"] for h in agent.history]
    assert len(losses) == 150 and mean(losses[-20:]) < 0.7 * mean(losses[:20])

    single, state = agent.predict(data[0].observations[0])
    assert single.shape == (1,) and single.dtype == np.float32 and state is None
    batch, _ = agent.predict(data[0].observations[:5], episode_start=np.ones(5, bool))
    assert batch.shape == (5, 1) and np.all(np.abs(batch) <= 3.0)
    np.testing.assert_allclose(batch[0], single, rtol=1e-6)
    with pytest.raises(ValueError, match=r"shape \(4,\) or \(n_envs, 4\)"):
        agent.predict(np.zeros(3))

    env = Monitor(gym.make(ENV_ID, max_episode_steps=20))
    mean_return, _ = evaluate_policy(agent, env, n_eval_episodes=1)  # SB3 calls predict itself
    assert mean_return > 0

    agent.save(tmp_path / "bc.pt")
    loaded = BCAgent.load(tmp_path / "bc.pt", device="cpu")
    np.testing.assert_array_equal(loaded.predict(data[1].observations)[0], agent.predict(data[1].observations)[0])
    with pytest.raises(ValueError, match="holds a BCAgent, not a IQLAgent"):
        IQLAgent.load(tmp_path / "bc.pt")

    twin = BCAgent(*spaces, hidden=TINY, learning_rate=3e-3, device="cpu")
    twin.fit(data, n_steps=150, batch_size=64, show_progress=False)
    np.testing.assert_array_equal(twin.predict(data[1].observations)[0], agent.predict(data[1].observations)[0])


def test_baselines_reject_mismatched_data_and_spaces(data, spaces):
    small = gym.spaces.Box(-np.inf, np.inf, (3,))
    with pytest.raises(ValueError, match="does not match the environment"):
        BCAgent(small, spaces[1], device="cpu").fit(data, 1, show_progress=False)
    with pytest.raises(ValueError, match="finite bounds"):
        IQLAgent(spaces[0], gym.spaces.Box(-np.inf, np.inf, (1,)), device="cpu")
    with pytest.raises(ValueError, match="continuous actions"):
        BCAgent(spaces[0], gym.spaces.Discrete(2), device="cpu")


def test_iql_update_shapes_q_function_and_reward_scale(data, spaces):
    agent = IQLAgent(*spaces, IQLConfig(hidden=TINY), device="cpu")
    agent.fit(data, n_steps=2, batch_size=8, show_progress=False)
    returns = np.array([episode.rewards.sum() for episode in data])
    assert returns.max() > returns.min()
    assert agent.reward_scale == pytest.approx(1000.0 / (returns.max() - returns.min()))

    batch = {
        "observations": torch.randn(8, 4),
        "actions": torch.rand(8, 1) * 6 - 3,
        "rewards": torch.ones(8),
        "next_observations": torch.randn(8, 4),
        "terminals": torch.zeros(8),
    }
    losses = agent.update(batch)
    assert set(losses) == {"value_loss", "actor_loss", "critic_loss", "weight"}
    assert all(v.shape == () and torch.isfinite(v) for v in losses.values())

    q = agent.q_function()
    obs, act = torch.randn(7, 4, dtype=torch.float64), torch.zeros(7, 1)
    values = q(obs, act)
    assert values.shape == (7,) and values.device == obs.device
    with torch.no_grad():
        expected = torch.minimum(*agent.target_critic(obs.float(), act)) / agent.reward_scale
    torch.testing.assert_close(values, expected)  # the original reward scale
    assert np.shape(agent.value(np.zeros(4))) == () and agent.value(np.zeros((3, 4))).shape == (3,)
    assert agent.value(torch.zeros(5, 4)).shape == (5,)
    action, _ = agent.predict(np.zeros(4))
    assert action.shape == (1,) and agent.predict(np.zeros((2, 4)))[0].shape == (2, 1)
    sampled = agent.predict(np.zeros((64, 4)), deterministic=False)[0]
    assert np.all(np.abs(sampled) <= 3.0) and sampled.std() > 0


def test_iql_learns_and_save_load_is_exact(data, spaces, tmp_path):
    config = IQLConfig(hidden=TINY, critic_lr=1e-3, value_lr=1e-3, actor_lr=3e-3)
    fresh = IQLAgent(*spaces, config, device="cpu")
    agent = IQLAgent(*spaces, config, device="cpu").fit(data, n_steps=200, batch_size=64, show_progress=False)
    critic = [h["critic_loss"] for h in agent.history]
    assert mean(critic[-20:]) < 0.5 * mean(critic[:20])

    # the actor loss is re-weighted as Q and V change, so check the policy's fit to the data instead
    def nll(model: IQLAgent) -> float:
        obs = torch.as_tensor(np.concatenate([e.observations for e in data]))
        act = model.scaler.normalize(torch.as_tensor(np.concatenate([e.actions for e in data])))
        with torch.no_grad():
            return -model.actor.log_prob(obs, act).mean().item()

    assert nll(agent) < nll(fresh) - 0.1

    agent.save(tmp_path / "iql.pt")
    loaded = IQLAgent.load(tmp_path / "iql.pt", device="cpu")
    obs = data[2].observations
    np.testing.assert_array_equal(loaded.predict(obs)[0], agent.predict(obs)[0])
    np.testing.assert_array_equal(loaded.value(obs), agent.value(obs))
    tensor_obs, tensor_act = torch.as_tensor(obs), torch.as_tensor(data[2].actions)
    torch.testing.assert_close(loaded.q_function()(tensor_obs, tensor_act), agent.q_function()(tensor_obs, tensor_act))
    assert loaded.reward_scale == agent.reward_scale and loaded.config == agent.config

    again = IQLAgent(*spaces, config, device="cpu").fit(data, n_steps=200, batch_size=64, show_progress=False)
    np.testing.assert_array_equal(again.predict(obs)[0], agent.predict(obs)[0])  # seeded: reproducible on CPU


def _four_rooms_episodes(n: int = 6) -> list[dict]:
    """Scripted four-rooms expert episodes with Dict observations, as plain dicts."""
    env = gym.make(FOUR_ROOMS_ID)
    expert = FourRoomsExpert(env, noise=0.1, seed=0)
    episodes = []
    for i in range(n):
        obs, _ = env.reset(seed=i)
        observations, actions, rewards, terminations = [obs], [], [], []
        terminated = truncated = False
        while not (terminated or truncated):
            action = expert(obs)
            obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(reward)
            terminations.append(terminated)
        stacked = {k: np.stack([o[k] for o in observations]) for k in observations[0]}
        arrays = {"actions": np.array(actions), "rewards": np.array(rewards), "terminations": terminations}
        episodes.append({"observations": stacked, **arrays})
    return episodes


def test_goal_bc_relabels_acts_on_dict_observations_and_round_trips(tmp_path):
    env = gym.make(FOUR_ROOMS_ID)
    raw = _four_rooms_episodes()
    agent = GoalBCAgent(env.observation_space, env.action_space, TINY, seed=0, device="cpu")
    relabelled = agent._episodes(raw)
    for episode, item in zip(relabelled, raw, strict=True):
        np.testing.assert_array_equal(episode.observations[:, :2], item["observations"]["observation"][:-1])
        final = item["observations"]["achieved_goal"][-1]  # the hindsight goal, on every step
        np.testing.assert_array_equal(episode.observations[:, 2:], np.broadcast_to(final, (len(episode), 2)))
    agent.fit(raw, n_steps=200, batch_size=64, show_progress=False)

    obs, _ = env.reset(seed=100)
    action, state = agent.predict(obs)
    assert action.shape == (2,) and env.action_space.contains(action) and state is None
    batch = {k: np.stack([obs[k], obs[k]]) for k in obs}
    batch["desired_goal"][1] = [0.9, 0.1]
    actions, _ = agent.predict(batch)
    assert actions.shape == (2, 2)
    np.testing.assert_allclose(actions[0], action)
    assert not np.allclose(actions[0], actions[1]), "the goal is an input of the policy"
    with pytest.raises(TypeError, match="Dict observation"):
        agent.predict(obs["observation"])

    venv = DummyVecEnv([lambda: Monitor(gym.make(FOUR_ROOMS_ID, max_episode_steps=20))] * 2)
    mean_return, _ = evaluate_policy(agent, venv, n_eval_episodes=2, warn=False)
    assert -20.0 <= mean_return <= 0.0

    agent.save(tmp_path / "goal_bc.pt")
    loaded = GoalBCAgent.load(tmp_path / "goal_bc.pt", device="cpu")
    np.testing.assert_array_equal(loaded.predict(batch)[0], actions)
    with pytest.raises(ValueError, match="holds a GoalBCAgent"):
        BCAgent.load(tmp_path / "goal_bc.pt")


def test_iql_antmaze_settings_shift_rewards_by_minus_one(data, spaces):
    config = IQLConfig.antmaze()
    assert (config.expectile, config.temperature, config.reward_shift) == (0.9, 10.0, -1.0)
    assert not config.normalize_rewards and IQLConfig.from_dict(config.to_dict()) == config
    seen = []
    agent = IQLAgent(*spaces, replace(config, hidden=TINY), device="cpu")
    update = agent.update
    agent.update = lambda batch, actor_lr=None: seen.append(batch["rewards"].clone()) or update(batch, actor_lr)
    agent.fit(data, 3, batch_size=8, show_progress=False)
    rewards = torch.cat(seen)
    assert torch.all(rewards == 0.0)  # the pendulum pays 1 per step: 1 - 1


def test_checkpoints_of_the_first_format_still_load(data, spaces, tmp_path):
    agent = BCAgent(*spaces, hidden=TINY, device="cpu").fit(data, 5, show_progress=False)
    agent.save(tmp_path / "bc.pt")
    saved = torch.load(tmp_path / "bc.pt", weights_only=True)

    def old_box(space):  # format 1 kept Box bounds as tensors
        return {"low": torch.as_tensor(space.low), "high": torch.as_tensor(space.high), "dtype": str(space.dtype)}

    saved.update(format="tt_agents.baselines/1", observation_space=old_box(spaces[0]), action_space=old_box(spaces[1]))
    torch.save(saved, tmp_path / "bc_v1.pt")
    loaded = BCAgent.load(tmp_path / "bc_v1.pt", device="cpu")
    assert loaded.observation_space == spaces[0] and loaded.action_space == spaces[1]
    np.testing.assert_array_equal(loaded.predict(data[1].observations)[0], agent.predict(data[1].observations)[0])


def test_iql_training_resumes_from_its_checkpoint_exactly(data, spaces, tmp_path):
    def new_agent():
        return IQLAgent(*spaces, IQLConfig(hidden=TINY), device="cpu")

    straight = new_agent().fit(data, 20, batch_size=8, show_progress=False)

    interrupted = new_agent()
    update, calls = interrupted.update, []

    def failing_update(batch, actor_lr=None):
        calls.append(1)
        if len(calls) == 15:
            raise KeyboardInterrupt
        return update(batch, actor_lr)

    interrupted.update = failing_update
    path = tmp_path / "iql_run.pt"
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(data, 20, batch_size=8, show_progress=False, checkpoint=path, checkpoint_every=10)
    resumed = new_agent().fit(data, 20, batch_size=8, show_progress=False, checkpoint=path, checkpoint_every=10)
    assert len(resumed.history) == 10  # steps 10..19 only
    for a, b in zip(straight.critic.state_dict().values(), resumed.critic.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="not a checkpoint of this run"):
        new_agent().fit(data, 30, batch_size=8, show_progress=False, checkpoint=path)
    assert IQLAgent.load(path, device="cpu").reward_scale == resumed.reward_scale
