"""TTAgent with a Discrete observation space: one observation token holding the state's number."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from helpers import CARTPOLE_ID, FROZEN_LAKE_ID, cartpole_episodes, frozen_lake_episodes, tiny_config
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv

from tt_agents import TTAgent


def lake() -> gym.Env:
    return gym.make(FROZEN_LAKE_ID, is_slippery=False, max_episode_steps=30)


@pytest.fixture(scope="module")
def lake_agent() -> TTAgent:
    env = lake()
    agent = TTAgent(env.observation_space, env.action_space, config=tiny_config(n_steps=300), device="cpu")
    return agent.fit(frozen_lake_episodes(), show_progress=False)


def test_the_observation_is_one_categorical_token(lake_agent) -> None:
    assert lake_agent.layout.observation_dim == 1 and lake_agent.tokenizer.categories[0] == 16
    action, _ = lake_agent.predict(0)
    assert action.shape == () and int(action) in range(4)
    actions, _ = lake_agent.predict(np.array([0, 4, 14]))
    assert actions.shape == (3,) and set(actions.tolist()) <= set(range(4))


def test_imitation_walks_the_lake_to_its_goal_through_evaluate_policy(lake_agent) -> None:
    lake_agent.configure_planner(mode="imitation")
    mean, _ = evaluate_policy(lake_agent, DummyVecEnv([lake] * 2), n_eval_episodes=4)
    assert mean == 1.0  # every episode reaches the goal (the data's noisy walks do in 72% of episodes)


def test_a_discrete_observation_agent_round_trips_through_a_checkpoint(lake_agent, tmp_path) -> None:
    lake_agent.configure_planner(mode="imitation")
    lake_agent.save_pretrained(tmp_path / "agent")
    loaded = TTAgent.from_pretrained(tmp_path / "agent", device="cpu")
    assert loaded.observation_space == lake_agent.observation_space
    cells = np.array([0, 1, 2, 4, 6, 8, 9, 10, 13, 14])
    np.testing.assert_array_equal(loaded.predict(cells)[0], lake_agent.predict(cells)[0])


@pytest.mark.parametrize("observation", [16, -1, 2.5, np.array([[0, 1]]), np.array([]), {"cell": 0}, "0"])
def test_an_observation_that_is_not_a_cell_is_refused_and_the_agent_acts_on(lake_agent, observation) -> None:
    lake_agent.reset()
    with pytest.raises((ValueError, TypeError), match="observation"):
        lake_agent.act(observation)
    assert int(lake_agent.act(0)) in range(4)


def test_discrete_observation_data_and_box_agents_do_not_mix() -> None:
    env, cartpole = lake(), gym.make(CARTPOLE_ID)
    box_agent = TTAgent(cartpole.observation_space, env.action_space, config=tiny_config(), device="cpu")
    with pytest.raises(ValueError, match=r"observations are integers of shape \(T,\)"):
        box_agent.fit(frozen_lake_episodes(n_episodes=2), show_progress=False)
    lake_agent = TTAgent(env.observation_space, cartpole.action_space, config=tiny_config(), device="cpu")
    with pytest.raises(ValueError, match=r"not integers of shape \(T,\)"):
        lake_agent.fit(cartpole_episodes(n_episodes=2), show_progress=False)
    episodes = frozen_lake_episodes(n_episodes=2)
    episodes[0]["observations"] = episodes[0]["observations"] + 16
    with pytest.raises(ValueError, match=r"categories 0 \.\. 15"):
        TTAgent(env.observation_space, env.action_space, config=tiny_config(), device="cpu").fit(episodes)


def test_spaces_the_tokens_cannot_hold_are_refused_when_the_agent_is_made() -> None:
    with pytest.raises(ValueError, match=r"Discrete\(500\).*n_bins=500"):
        TTAgent(gym.spaces.Discrete(500), gym.spaces.Discrete(6), config=tiny_config(), device="cpu")
    with pytest.raises(ValueError, match=r"action_space Discrete\(30\).*n_bins=30"):
        TTAgent(gym.spaces.Discrete(5), gym.spaces.Discrete(30), config=tiny_config(), device="cpu")
    with pytest.raises(TypeError, match="must start at 0"):
        TTAgent(gym.spaces.Discrete(5, start=1), gym.spaces.Discrete(2), config=tiny_config(), device="cpu")
    with pytest.raises(ValueError, match=r"observation_space MultiDiscrete\(\[ 3 40\]\).*n_bins=40"):
        TTAgent(gym.spaces.MultiDiscrete([3, 40]), gym.spaces.Discrete(2), config=tiny_config(), device="cpu")
