"""Tests of tt_agents.baselines.bc: behaviour cloning, plain and goal-conditioned, on small in-memory datasets."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from helpers import CARTPOLE_ID, ENV_ID, FROZEN_LAKE_ID, cartpole_episodes, frozen_lake_episodes, pendulum_episodes
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from tt_agents.baselines import BCAgent, GoalBCAgent, IQLAgent
from tt_agents.data_loading import Episode, load_episodes
from tt_agents.envs import FOUR_ROOMS_ID, FourRoomsExpert

TINY = (32, 32)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks run fastest on one thread


@pytest.fixture(scope="module")
def data() -> list[Episode]:
    """Balanced episodes (return 60) and noisy ones that fall early."""
    episodes = pendulum_episodes(n_episodes=6, steps=60, noise=0.5) + pendulum_episodes(4, 60, noise=4.0, seed=10)
    return load_episodes(episodes)


def mean(values: list[float]) -> float:
    return float(np.mean(values))


def test_bc_learns_predicts_like_sb3_and_round_trips(data, env_spaces, tmp_path):
    agent = BCAgent(*env_spaces, hidden=TINY, learning_rate=3e-3, device="cpu")
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
    assert mean_return >= 15, "BC balances the pole (a full push in one direction falls after 3 steps)"

    agent.save(tmp_path / "bc")
    loaded = BCAgent.load(tmp_path / "bc", device="cpu")
    np.testing.assert_array_equal(loaded.predict(data[1].observations)[0], agent.predict(data[1].observations)[0])
    with pytest.raises(ValueError, match="holds a BCAgent, not a IQLAgent"):
        IQLAgent.load(tmp_path / "bc")

    twin = BCAgent(*env_spaces, hidden=TINY, learning_rate=3e-3, device="cpu")
    twin.fit(data, n_steps=150, batch_size=64, show_progress=False)
    np.testing.assert_array_equal(twin.predict(data[1].observations)[0], agent.predict(data[1].observations)[0])


def test_baselines_reject_mismatched_data_and_spaces(data, env_spaces):
    small = gym.spaces.Box(-np.inf, np.inf, (3,))
    with pytest.raises(ValueError, match="does not match the environment"):
        BCAgent(small, env_spaces[1], device="cpu").fit(data, 1, show_progress=False)
    with pytest.raises(ValueError, match="finite bounds"):
        IQLAgent(env_spaces[0], gym.spaces.Box(-np.inf, np.inf, (1,)), device="cpu")
    with pytest.raises(TypeError, match="TTAgent plans MultiDiscrete .* map its combinations onto one Discrete"):
        BCAgent(env_spaces[0], gym.spaces.MultiDiscrete([2, 2]), device="cpu")
    with pytest.raises(TypeError, match=r"MultiBinary\(2\): the baselines take a flat Box or a Discrete"):
        IQLAgent(env_spaces[0], gym.spaces.MultiBinary(2), device="cpu")
    with pytest.raises(TypeError, match=r"MultiDiscrete\(\[3 3\]\); flatten it: gymnasium.wrappers.FlattenObs"):
        BCAgent(gym.spaces.MultiDiscrete([3, 3]), env_spaces[1], device="cpu")
    blackjack = gym.spaces.Tuple((gym.spaces.Discrete(32), gym.spaces.Discrete(11), gym.spaces.Discrete(2)))
    with pytest.raises(TypeError, match=r"Tuple\(Discrete\(32\).*FlattenObservation\(env\) gives a flat"):
        BCAgent(blackjack, env_spaces[1], device="cpu")
    with pytest.raises(TypeError, match=r"observation_space must be a flat \(1-D\) gymnasium Box"):
        BCAgent(gym.spaces.Box(-1.0, 1.0, (2, 2)), env_spaces[1], device="cpu")


@pytest.mark.parametrize(
    ("settings", "error", "says"),
    [
        ({"hidden": ()}, ValueError, "hidden must be a non-empty sequence of widths >= 1"),
        ({"hidden": (64, 0)}, ValueError, "hidden must be a non-empty sequence of widths >= 1"),
        ({"hidden": (64, 2.5)}, TypeError, "hidden must be a sequence of int widths"),
        ({"hidden": 256}, TypeError, "hidden must be a sequence of int widths"),
        ({"learning_rate": -1e-3}, ValueError, "learning_rate must be finite and > 0"),
        ({"learning_rate": float("nan")}, ValueError, "learning_rate must be finite and > 0"),
        ({"learning_rate": "3e-4"}, TypeError, "learning_rate must be a number"),
    ],
)
def test_bc_names_the_setting_it_refuses(env_spaces, settings, error, says):
    with pytest.raises(error, match=says):
        BCAgent(*env_spaces, device="cpu", **settings)


def test_bc_takes_numpy_and_whole_float_settings_and_saves_them_as_json(env_spaces, tmp_path):
    agent = BCAgent(
        *env_spaces, hidden=np.array([8, 8]), learning_rate=np.float32(1e-3), seed=np.int64(3), device="cpu"
    )
    assert agent.hidden == (8, 8) and type(agent.learning_rate) is float and type(agent.seed) is int
    assert BCAgent(*env_spaces, hidden=[8.0, 8.0], learning_rate=1, device="cpu").hidden == (8, 8)
    data = load_episodes(pendulum_episodes(n_episodes=2, steps=10))
    agent.fit(data, n_steps=2, batch_size=4, show_progress=False)
    loaded = BCAgent.from_pretrained(agent.save_pretrained(tmp_path / "bc"))
    assert (loaded.hidden, loaded.learning_rate, loaded.seed) == ((8, 8), agent.learning_rate, 3)


def test_bc_on_discrete_actions_classifies_acts_with_ints_and_round_trips(tmp_path):
    env = gym.make(CARTPOLE_ID)
    agent = BCAgent(env.observation_space, env.action_space, hidden=(32, 32), learning_rate=3e-3, device="cpu")
    agent.fit(cartpole_episodes(), 400, batch_size=64, show_progress=False)
    action, _ = agent.predict(np.zeros(4, np.float32))
    assert action.shape == () and int(action) in (0, 1)
    eval_env = DummyVecEnv([lambda: Monitor(gym.make(CARTPOLE_ID, max_episode_steps=100))] * 2)
    mean, _ = evaluate_policy(agent, eval_env, n_eval_episodes=4)
    assert mean >= 90  # the scripted controller's balance (random actions: ~20 steps)
    agent.save_pretrained(tmp_path / "bc")
    loaded = BCAgent.from_pretrained(tmp_path / "bc", device="cpu")
    observations = np.random.default_rng(0).normal(scale=0.1, size=(8, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(observations)[0], agent.predict(observations)[0])
    episodes = cartpole_episodes(n_episodes=2)
    episodes[0]["actions"] = episodes[0]["actions"] + 5
    with pytest.raises(ValueError, match=r"categories 0 \.\. 1"):
        BCAgent(env.observation_space, env.action_space, device="cpu").fit(episodes, 1, show_progress=False)


def test_bc_reads_discrete_observations_one_hot_walks_the_lake_and_round_trips(tmp_path):
    def lake():
        return Monitor(gym.make(FROZEN_LAKE_ID, is_slippery=False, max_episode_steps=30))

    env = lake()
    agent = BCAgent(env.observation_space, env.action_space, hidden=(32, 32), learning_rate=3e-3, device="cpu")
    assert agent.observation_dim == 16
    agent.fit(frozen_lake_episodes(), 500, batch_size=64, show_progress=False)
    action, _ = agent.predict(0)
    assert action.shape == () and int(action) in range(4)
    mean, _ = evaluate_policy(agent, DummyVecEnv([lake] * 2), n_eval_episodes=4)
    assert mean == 1.0  # every episode reaches the goal (the data's noisy walks do in 72% of episodes)
    agent.save_pretrained(tmp_path / "bc")
    loaded = BCAgent.from_pretrained(tmp_path / "bc", device="cpu")
    cells = np.array([0, 1, 2, 4, 6, 8, 9, 10, 13, 14])
    np.testing.assert_array_equal(loaded.predict(cells)[0], agent.predict(cells)[0])
    with pytest.raises(ValueError, match=r"categories 0 \.\. 15"):
        agent.predict(16)
    episodes = frozen_lake_episodes(n_episodes=2)
    episodes[0]["observations"] = episodes[0]["observations"] + 16
    with pytest.raises(ValueError, match=r"episode 0: the observations must be the categories 0 \.\. 15"):
        BCAgent(env.observation_space, env.action_space, device="cpu").fit(episodes, 1, show_progress=False)


def test_goal_bc_needs_a_goal_env_dict_of_flat_boxes(env_spaces):
    action_space = gym.spaces.Box(-1.0, 1.0, (2,))
    with pytest.raises(TypeError, match="needs a Dict observation space"):
        GoalBCAgent(env_spaces[0], action_space, device="cpu")
    part = gym.spaces.Box(0.0, 1.0, (2,))
    with pytest.raises(TypeError, match="missing {'desired_goal'}"):
        GoalBCAgent(gym.spaces.Dict({"observation": part}), action_space, device="cpu")
    square = gym.spaces.Box(0.0, 1.0, (2, 2))
    with pytest.raises(TypeError, match=r"observation_space\['desired_goal'\] must be a flat"):
        GoalBCAgent(gym.spaces.Dict({"observation": part, "desired_goal": square}), action_space, device="cpu")


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
    assert agent.goal_dim == 2 and agent.observation_dim == 4 and agent.input_space.shape == (4,)
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
    np.testing.assert_allclose(actions[0], action, rtol=1e-5, atol=1e-6)  # a batch of 2 may round differently
    assert not np.allclose(actions[0], actions[1]), "the goal is an input of the policy"
    with pytest.raises(TypeError, match="Dict observation"):
        agent.predict(obs["observation"])

    venv = DummyVecEnv([lambda: Monitor(gym.make(FOUR_ROOMS_ID, max_episode_steps=20))] * 2)
    returns, lengths = evaluate_policy(agent, venv, n_eval_episodes=2, warn=False, return_episode_rewards=True)
    assert len(returns) == 2 and all(1 <= n <= 20 for n in lengths), "SB3's loop ran on the Dict observations"

    agent.save_pretrained(tmp_path / "goal_bc")
    loaded = GoalBCAgent.from_pretrained(tmp_path / "goal_bc", device="cpu")
    assert loaded.observation_space == env.observation_space
    np.testing.assert_array_equal(loaded.predict(batch)[0], actions)
    with pytest.raises(ValueError, match="holds a GoalBCAgent"):
        BCAgent.load(tmp_path / "goal_bc")
