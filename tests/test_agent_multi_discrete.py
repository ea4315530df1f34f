"""TTAgent with MultiDiscrete and MultiBinary spaces: a token per entry holding its category, acted on as ints."""

from __future__ import annotations

from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from helpers import record_episodes, tiny_config
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv

from tt_agents import TTAgent, evaluate

SIZE = 5


class GridWalk(gym.Env):
    """A 5 x 5 grid: the position ``(x, y)`` is a MultiDiscrete([5, 5]) observation; reaching the corner (4, 4)
    pays 1 and ends the episode. Actions move each axis at once: MultiDiscrete([3, 3]) (0 back, 1 stay, 2 forward)
    or MultiBinary(4) (x forward, x back, y forward, y back; both or neither stays)."""

    observation_space = spaces.MultiDiscrete([SIZE, SIZE])

    def __init__(self, actions: str = "multi_discrete") -> None:
        self.binary = actions == "multi_binary"
        self.action_space = spaces.MultiBinary(4) if self.binary else spaces.MultiDiscrete([3, 3])
        self.position = np.zeros(2, dtype=np.int64)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.position = self.np_random.integers(0, SIZE - 2, size=2)
        return self.position.copy(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = np.asarray(action, dtype=np.int64)
        move = action[[0, 2]] - action[[1, 3]] if self.binary else action - 1
        self.position = np.clip(self.position + move, 0, SIZE - 1)
        reached = bool((self.position == SIZE - 1).all())
        return self.position.copy(), float(reached), reached, False, {}


def grid(actions: str) -> gym.Env:
    return gym.wrappers.TimeLimit(GridWalk(actions), max_episode_steps=12)


def walks(actions: str, n_episodes: int = 40, noise: float = 0.25, seed: int = 0) -> list[dict]:
    """Walks straight to the corner, a random action in a quarter of the steps."""
    env = grid(actions)
    rng = np.random.default_rng(seed)

    def policy(position: np.ndarray) -> np.ndarray:
        if rng.random() < noise:
            return env.action_space.sample()
        forward = (position < SIZE - 1).astype(env.action_space.dtype)
        if actions == "multi_binary":
            return np.array([forward[0], 0, forward[1], 0], dtype=env.action_space.dtype)
        return forward + 1

    env.action_space.seed(seed)
    return record_episodes(env, policy, n_episodes, seed)


@pytest.fixture(scope="module", params=["multi_discrete", "multi_binary"])
def grid_agent(request) -> TTAgent:
    env = grid(request.param)
    config = tiny_config(n_steps=300)
    config.data = replace(config.data, termination_penalty=None)  # reaching the corner ends an episode well
    agent = TTAgent(env.observation_space, env.action_space, config=config, device="cpu")
    return agent.fit(walks(request.param), show_progress=False)


def test_every_entry_is_a_categorical_token(grid_agent) -> None:
    if isinstance(grid_agent.action_space, spaces.MultiDiscrete):
        assert grid_agent.tokenizer.categories[:4] == (SIZE, SIZE, 3, 3)
    else:
        assert grid_agent.tokenizer.categories[:6] == (SIZE, SIZE, 2, 2, 2, 2)


@pytest.mark.parametrize("mode", ["reward", "imitation"])
def test_the_agent_acts_with_the_action_spaces_ints(grid_agent, mode) -> None:
    grid_agent.configure_planner(mode=mode)
    space = grid_agent.action_space
    action, _ = grid_agent.predict(np.array([0, 3]))
    assert action.shape == space.shape and action.dtype == space.dtype and space.contains(action)
    actions, _ = grid_agent.predict(np.array([[0, 0], [4, 1], [2, 2]]))
    assert actions.shape == (3, *space.shape) and all(space.contains(a) for a in actions)


def test_imitation_walks_to_the_corner_through_evaluate_policy(grid_agent) -> None:
    grid_agent.configure_planner(mode="imitation")
    kind = "multi_binary" if isinstance(grid_agent.action_space, spaces.MultiBinary) else "multi_discrete"
    mean, _ = evaluate_policy(grid_agent, DummyVecEnv([lambda: grid(kind)] * 2), n_eval_episodes=6)
    assert mean == 1.0  # every episode reaches the corner (random actions: 5% and 2.5% of 40 episodes)
    result = evaluate(grid_agent, grid(kind), n_episodes=2, show_progress=False)
    assert result.returns == [1.0, 1.0]


def test_the_agent_round_trips_through_a_checkpoint(grid_agent, tmp_path) -> None:
    grid_agent.configure_planner(mode="imitation")
    grid_agent.save_pretrained(tmp_path / "agent")
    loaded = TTAgent.from_pretrained(tmp_path / "agent", device="cpu")
    assert loaded.observation_space == grid_agent.observation_space
    assert loaded.action_space == grid_agent.action_space
    cells = np.array([[x, y] for x in range(SIZE) for y in range(SIZE)])
    np.testing.assert_array_equal(loaded.predict(cells)[0], grid_agent.predict(cells)[0])


@pytest.mark.parametrize("observation", [[5, 0], [0, -1], [0.5, 1], [1], [[0, 1, 2]], [np.nan, 0], {"x": [0, 0]}])
def test_an_observation_outside_the_space_is_refused_and_the_agent_acts_on(grid_agent, observation) -> None:
    grid_agent.reset()
    with pytest.raises((ValueError, TypeError), match="observation"):
        grid_agent.act(observation)
    assert grid_agent.action_space.contains(grid_agent.act(np.array([0, 0])))


def test_data_outside_the_categories_is_refused_before_training() -> None:
    env = grid("multi_discrete")
    agent = TTAgent(env.observation_space, env.action_space, config=tiny_config(), device="cpu")
    episodes = walks("multi_discrete", n_episodes=3)
    episodes[1]["actions"] = episodes[1]["actions"] + np.array([0, 1])  # entry 1 reaches 3
    with pytest.raises(ValueError, match=r"actions for MultiDiscrete\(\[3 3\]\): entry 1 .* 0 \.\. 2, got .* 3\]"):
        agent.fit(episodes, show_progress=False)
    episodes = walks("multi_discrete", n_episodes=3)
    episodes[2]["observations"] = episodes[2]["observations"] * 2  # positions up to 8
    with pytest.raises(ValueError, match=r"observations for MultiDiscrete\(\[5 5\]\): entry 0 .* 0 \.\. 4"):
        agent.fit(episodes, show_progress=False)
    assert agent.model is None and agent.tokenizer is None
    with pytest.raises(TypeError, match="q_function='iql': IQL takes Box and Discrete action spaces"):
        agent.fit(walks("multi_discrete", n_episodes=3), q_function="iql", show_progress=False)
    box_actions = TTAgent(env.observation_space, spaces.Box(-1, 1, (2,)), config=tiny_config(), device="cpu")
    with pytest.raises(TypeError, match=r"q_function='iql': IQL reads .*, not MultiDiscrete\(\[5 5\]\)"):
        box_actions.fit(walks("multi_discrete", n_episodes=3), q_function="iql")
    assert box_actions.model is None


def test_the_space_and_its_dtype_survive_a_checkpoint(tmp_path) -> None:
    observation_space = spaces.MultiDiscrete([SIZE, SIZE], dtype=np.int32)
    action_space = spaces.MultiDiscrete([3, 3], dtype=np.int16)
    agent = TTAgent(observation_space, action_space, config=tiny_config(n_steps=5), device="cpu")
    agent.fit(walks("multi_discrete", n_episodes=4), show_progress=False)
    agent.save_pretrained(tmp_path / "agent")
    loaded = TTAgent.from_pretrained(tmp_path / "agent", device="cpu")
    assert loaded.observation_space == observation_space and loaded.action_space == action_space
    assert loaded.predict(np.array([1, 2], dtype=np.int32))[0].dtype == np.int16
