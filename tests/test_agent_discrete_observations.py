"""TTAgent with a Discrete observation space: one observation token holding the state's number."""

from __future__ import annotations

import warnings
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
from helpers import CARTPOLE_ID, FROZEN_LAKE_ID, cartpole_episodes, frozen_lake_episodes, tiny_config
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv

from tt_agents import AgentConfig, TTAgent


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


# ---- Tuple and Dict observations with categorical entries: a token per category variable ---------------------

BLACKJACK_ID = "Blackjack-v1"


def stick_at_17(observation) -> int:
    return int(observation[0] < 17)  # hit below 17


def blackjack_episodes(n_episodes: int = 400, seed: int = 0) -> list[dict]:
    """Episodes of "hit below 17" with 10% random actions; observations as Minari stores a Tuple space's: one
    (T + 1,) array per entry."""
    env, rng = gym.make(BLACKJACK_ID), np.random.default_rng(seed)
    episodes = []
    for i in range(n_episodes):
        observation, _ = env.reset(seed=seed + i)
        observations, actions, rewards, terminated = [observation], [], [], False
        while not terminated:
            action = stick_at_17(observation) if rng.random() > 0.1 else int(rng.integers(2))
            observation, reward, terminated, _, _ = env.step(action)
            observations.append(observation)
            actions.append(action)
            rewards.append(reward)
        entries = tuple(np.array(column) for column in zip(*observations, strict=True))
        episodes.append({"observations": entries, "actions": np.array(actions), "rewards": rewards, "terminated": True})
    return episodes


def blackjack_config(n_steps: int) -> AgentConfig:
    """The tiny config with a token per player's sum (32 bins), and the game's end scored as it is (no penalty)."""
    config = tiny_config(n_steps=n_steps)
    config.tokenizer = replace(config.tokenizer, n_bins=32)
    config.data = replace(config.data, termination_penalty=None)
    return config


@pytest.fixture(scope="module")
def blackjack_agent() -> TTAgent:
    env = gym.make(BLACKJACK_ID)
    agent = TTAgent(env.observation_space, env.action_space, config=blackjack_config(300), device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a game often ends at its first step, which is no reason to warn
        agent.fit(blackjack_episodes(), show_progress=False)
    agent.configure_planner(mode="imitation")
    return agent


def test_a_tuple_of_discretes_is_a_token_per_entry_and_imitation_learns_the_rule(blackjack_agent) -> None:
    assert blackjack_agent.layout.observation_dim == 3
    assert blackjack_agent.tokenizer.categories[:4] == (32, 11, 2, 2)  # the entries' categories, then the action's
    states = [(total, dealer, 0) for total in range(4, 22) for dealer in range(1, 11)]
    batch = tuple(np.array(column) for column in zip(*states, strict=True))  # as a vectorized env gives it
    actions, _ = blackjack_agent.predict(batch, deterministic=True)
    assert actions.shape == (len(states),)
    agreement = np.mean([a == stick_at_17(s) for a, s in zip(actions, states, strict=True)])
    assert agreement >= 0.9, agreement
    assert int(blackjack_agent.predict((20, 10, 0))[0]) == 0  # one observation: stick on 20
    venv = DummyVecEnv([lambda: gym.make(BLACKJACK_ID)] * 2)  # batched Tuple observations, as SB3 gives them
    returns, _ = evaluate_policy(blackjack_agent, venv, n_eval_episodes=4, return_episode_rewards=True)
    assert len(returns) == 4


def test_tuple_data_reads_the_same_per_entry_or_per_step(blackjack_agent) -> None:
    from tt_agents.data_loading import load_episodes

    per_entry = blackjack_episodes(5, seed=7)
    per_step = [{**e, "observations": list(zip(*e["observations"], strict=True))} for e in per_entry]
    keys = blackjack_agent.observation_keys
    read = [load_episodes(episodes, observation_key=keys) for episodes in (per_entry, per_step)]
    for a, b in zip(*read, strict=True):
        np.testing.assert_array_equal(a.observations, b.observations)
        assert a.observations.shape[1] == 3


def test_a_tuple_observation_agent_round_trips_through_a_checkpoint(blackjack_agent, tmp_path) -> None:
    blackjack_agent.save_pretrained(tmp_path / "agent")
    loaded = TTAgent.from_pretrained(tmp_path / "agent", device="cpu")
    assert loaded.observation_space == blackjack_agent.observation_space
    batch = (np.array([12, 16, 17, 20]), np.array([2, 7, 10, 1]), np.array([0, 1, 0, 1]))
    np.testing.assert_array_equal(loaded.predict(batch)[0], blackjack_agent.predict(batch)[0])


@pytest.mark.parametrize("observation", [(32, 10, 0), (14, 10, 2), (14.5, 10, 0), (14, 10), {"0": 14}, 14])
def test_a_tuple_observation_out_of_its_categories_is_refused_and_the_agent_acts_on(
    blackjack_agent, observation
) -> None:
    blackjack_agent.reset()
    with pytest.raises((ValueError, TypeError), match="observation"):
        blackjack_agent.act(observation)
    assert int(blackjack_agent.act((14, 10, 0))) in (0, 1)


def test_data_out_of_a_tuples_categories_is_refused_before_training() -> None:
    env = gym.make(BLACKJACK_ID)
    agent = TTAgent(env.observation_space, env.action_space, config=blackjack_config(5), device="cpu")
    episodes = blackjack_episodes(5)
    episodes[2]["observations"][0][0] = 40  # a player's sum past Discrete(32)
    with pytest.raises(ValueError, match=r"categorical columns \[0, 1, 2\].*entry 0 must be one of the categories"):
        agent.fit(episodes, show_progress=False)
    assert agent.model is None


def test_a_dict_with_box_and_categorical_entries_trains_and_acts_on_dict_observations() -> None:
    from gymnasium import spaces

    space = spaces.Dict([("position", spaces.Box(-1.0, 1.0, (2,))), ("direction", spaces.Discrete(4))])
    rng = np.random.default_rng(0)
    episodes = [
        {
            "observations": {"position": rng.uniform(-1, 1, (21, 2)), "direction": rng.integers(0, 4, 21)},
            "actions": rng.integers(0, 3, 20),
            "rewards": rng.normal(size=20),
        }
        for _ in range(6)
    ]
    agent = TTAgent(space, spaces.Discrete(3), config=tiny_config(n_steps=5), device="cpu")
    agent.fit(episodes, show_progress=False)
    assert agent.layout.observation_dim == 3 and agent.tokenizer.categories[:4] == (None, None, 4, 3)
    assert int(agent.predict({"position": np.array([0.1, -0.2]), "direction": 2})[0]) in range(3)
    batch = {"position": np.zeros((2, 2)), "direction": np.array([0, 3])}
    assert agent.predict(batch)[0].shape == (2,)
    with pytest.raises(ValueError, match="observation"):
        agent.predict({"position": np.zeros(2), "direction": 4})


def test_where_categorical_entries_cannot_be_read_the_error_says_how_to_flatten() -> None:
    from tt_agents.baselines import BCAgent

    env = gym.make(BLACKJACK_ID)
    with pytest.raises(TypeError, match="FlattenObservation"):
        BCAgent(env.observation_space, env.action_space)
    agent = TTAgent(env.observation_space, env.action_space, config=blackjack_config(5), device="cpu")
    with pytest.raises(TypeError, match="IQL reads"):
        agent.fit(blackjack_episodes(5), q_function="iql", show_progress=False)
