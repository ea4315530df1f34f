"""Tests of tt_agents.baselines.iql: Implicit Q-Learning on small in-memory datasets."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import frozen_lake_episodes, pendulum_episodes

from tt_agents.baselines import IQLAgent, IQLConfig, expectile_loss
from tt_agents.data_loading import Episode, load_episodes
from tt_agents.qfunctions import IQLQFunction, as_q_function

TINY = (32, 32)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks run fastest on one thread


@pytest.fixture(scope="module")
def data() -> list[Episode]:
    """Balanced episodes (return 60) and noisy ones that fall early: returns spread for reward scaling."""
    episodes = pendulum_episodes(n_episodes=6, steps=60, noise=0.5) + pendulum_episodes(4, 60, noise=4.0, seed=10)
    return load_episodes(episodes)


def mean(values: list[float]) -> float:
    return float(np.mean(values))


def test_expectile_loss_matches_a_hand_computation():
    diff = torch.tensor([2.0, -1.0, 0.5, -3.0])
    expected = (0.7 * 4.0 + 0.3 * 1.0 + 0.7 * 0.25 + 0.3 * 9.0) / 4  # = 1.49375
    assert expectile_loss(diff, 0.7).item() == pytest.approx(expected)
    assert expectile_loss(diff, 0.5).item() == pytest.approx(0.5 * diff.square().mean().item())


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"batch_size": "256"}, TypeError, "IQLConfig.batch_size must be <class 'int'>"),
        ({"actor_lr": -3e-4}, ValueError, "IQLConfig.actor_lr must be finite and > 0"),
        ({"temperature": float("nan")}, ValueError, "IQLConfig.temperature must be finite and >= 0"),
        ({"expectile": 1.0}, ValueError, r"IQLConfig.expectile must be in \(0, 1\)"),
        ({"polyak": 0.0}, ValueError, r"IQLConfig.polyak must be in \(0, 1\]"),
        ({"hidden": ()}, ValueError, "IQLConfig.hidden must be a non-empty tuple of widths >= 1"),
        ({"hidden": (64, 0)}, ValueError, "IQLConfig.hidden must be a non-empty tuple of widths >= 1"),
        ({"hidden": (64, 32.5)}, TypeError, "IQLConfig.hidden must be"),
        ({"normalize_rewards": 1}, TypeError, "IQLConfig.normalize_rewards must be <class 'bool'>"),
    ],
)
def test_iql_config_names_the_setting_it_refuses(changes, error, match):
    with pytest.raises(error, match=match):
        IQLConfig(**changes)


def test_iql_config_takes_numpy_widths_and_a_json_list():
    config = IQLConfig(hidden=[np.int64(64), 32], batch_size=np.int64(128))
    assert config.hidden == (64, 32) and type(config.batch_size) is int
    assert IQLConfig(hidden=np.array([16, 16])).hidden == (16, 16) == IQLConfig(hidden=(16.0, 16.0)).hidden
    assert IQLConfig.from_dict({"hidden": [64, 32]}).hidden == (64, 32)
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['expectle'\]"):
        IQLConfig.from_dict({"expectle": 0.7})


def test_iql_agent_refuses_settings_that_are_not_an_iql_config(env_spaces):
    with pytest.raises(TypeError, match="config must be an IQLConfig"):
        IQLAgent(*env_spaces, {"expectile": 0.9}, device="cpu")
    assert type(IQLAgent(*env_spaces, IQLConfig(hidden=TINY), seed=np.int64(2), device="cpu").seed) is int


def test_iql_update_shapes_q_function_and_reward_scale(data, env_spaces):
    agent = IQLAgent(*env_spaces, IQLConfig(hidden=TINY), device="cpu")
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
    assert isinstance(q, IQLQFunction) and isinstance(as_q_function(agent), IQLQFunction)
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


def test_iql_learns_and_save_load_is_exact(data, env_spaces, tmp_path):
    config = IQLConfig(hidden=TINY, critic_lr=1e-3, value_lr=1e-3, actor_lr=3e-3)
    fresh = IQLAgent(*env_spaces, config, device="cpu")
    agent = IQLAgent(*env_spaces, config, device="cpu").fit(data, n_steps=200, batch_size=64, show_progress=False)
    critic = [h["critic_loss"] for h in agent.history]
    assert mean(critic[-20:]) < 0.5 * mean(critic[:20])

    # the actor loss is re-weighted as Q and V change, so check the policy's fit to the data instead
    def nll(model: IQLAgent) -> float:
        obs = torch.as_tensor(np.concatenate([e.observations for e in data]))
        act = model.scaler.normalize(torch.as_tensor(np.concatenate([e.actions for e in data])))
        with torch.no_grad():
            return -model.actor.log_prob(obs, act).mean().item()

    assert nll(agent) < nll(fresh) - 0.1

    agent.save(tmp_path / "iql")
    loaded = IQLAgent.load(tmp_path / "iql", device="cpu")
    obs = data[2].observations
    np.testing.assert_array_equal(loaded.predict(obs)[0], agent.predict(obs)[0])
    np.testing.assert_array_equal(loaded.value(obs), agent.value(obs))
    tensor_obs, tensor_act = torch.as_tensor(obs), torch.as_tensor(data[2].actions)
    torch.testing.assert_close(loaded.q_function()(tensor_obs, tensor_act), agent.q_function()(tensor_obs, tensor_act))
    assert loaded.reward_scale == agent.reward_scale and loaded.config == agent.config

    again = IQLAgent(*env_spaces, config, device="cpu").fit(data, n_steps=200, batch_size=64, show_progress=False)
    np.testing.assert_array_equal(again.predict(obs)[0], agent.predict(obs)[0])  # seeded: reproducible on CPU


def test_iql_antmaze_settings_shift_rewards_by_minus_one(data, env_spaces):
    config = IQLConfig.antmaze()
    assert (config.expectile, config.temperature, config.reward_shift) == (0.9, 10.0, -1.0)
    assert not config.normalize_rewards and IQLConfig.from_dict(config.to_dict()) == config
    seen = []
    agent = IQLAgent(*env_spaces, replace(config, hidden=TINY), device="cpu")
    update = agent.update
    agent.update = lambda batch, actor_lr=None: seen.append(batch["rewards"].clone()) or update(batch, actor_lr)
    agent.fit(data, 3, batch_size=8, show_progress=False)
    rewards = torch.cat(seen)
    assert torch.all(rewards == 0.0)  # the pendulum pays 1 per step: 1 - 1


def _interrupted_run(agent: IQLAgent, data: list[Episode], path, at: int) -> None:
    """``fit(data, 20, checkpoint=path, checkpoint_every=10)`` stopped by an interrupt at update number ``at``."""
    update, calls = agent.update, []

    def failing_update(batch, actor_lr=None):
        calls.append(1)
        if len(calls) == at:
            raise KeyboardInterrupt
        return update(batch, actor_lr)

    agent.update = failing_update
    with pytest.raises(KeyboardInterrupt):
        agent.fit(data, 20, batch_size=8, show_progress=False, checkpoint=path, checkpoint_every=10)


def test_iql_training_resumes_from_its_checkpoint_exactly(data, env_spaces, tmp_path):
    def new_agent():
        return IQLAgent(*env_spaces, IQLConfig(hidden=TINY), device="cpu")

    straight = new_agent().fit(data, 20, batch_size=8, show_progress=False)
    path = tmp_path / "iql_run"
    _interrupted_run(new_agent(), data, path, at=15)
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    resumed = new_agent().fit(data, 20, batch_size=8, show_progress=False, checkpoint=path, checkpoint_every=10)
    assert len(resumed.history) == 10  # steps 10..19 only
    for a, b in zip(straight.critic.state_dict().values(), resumed.critic.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="not a checkpoint of this run"):
        new_agent().fit(data, 30, batch_size=8, show_progress=False, checkpoint=path)
    assert IQLAgent.load(path, device="cpu").reward_scale == resumed.reward_scale


def test_iql_training_resumes_from_a_legacy_single_file_run(data, env_spaces, tmp_path):
    """A run interrupted under the single-file format continues, and its checkpoint becomes a folder."""
    from tt_agents.baselines.checkpoint import read_checkpoint

    def new_agent():
        return IQLAgent(*env_spaces, IQLConfig(hidden=TINY), device="cpu")

    straight = new_agent().fit(data, 20, batch_size=8, show_progress=False)
    folder = tmp_path / "folder_run"
    _interrupted_run(new_agent(), data, folder, at=15)
    state = read_checkpoint(folder, "IQLAgent")  # write it as the single file the earlier format kept
    legacy = {
        **{k: v for k, v in state.items() if k != "tensors"},
        "format": "tt_agents.baselines/2",
        "fit_progress": {**state["fit_progress"], "generator": state["tensors"]["fit_generator"]},
    }
    path = tmp_path / "iql_run.pt"
    torch.save(legacy, path)
    resumed = new_agent().fit(data, 20, batch_size=8, show_progress=False, checkpoint=path, checkpoint_every=10)
    assert len(resumed.history) == 10 and path.is_dir()
    for a, b in zip(straight.critic.state_dict().values(), resumed.critic.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_iql_reads_discrete_observations_one_hot_in_its_values_and_q_function():
    import gymnasium as gym

    box = gym.spaces.Box(-1.0, 1.0, (1,))
    episodes = [dict(e, actions=e["actions"][:, None] / 1.5 - 1.0) for e in frozen_lake_episodes(n_episodes=10)]
    agent = IQLAgent(gym.spaces.Discrete(16), box, device="cpu").fit(episodes, 50, show_progress=False)
    assert agent.observation_dim == 16, "a cell is read one-hot, not as one number"
    cells = np.array([0, 14])
    as_rows = torch.tensor([[0.0], [14.0]])  # how the planner gives them: one column of categories
    np.testing.assert_allclose(agent.value(as_rows).numpy(), agent.value(cells), rtol=1e-6)
    q = agent.q_function()(as_rows, torch.zeros(2, 1))
    assert q.shape == (2,) and torch.isfinite(q).all()
    assert agent.predict(cells)[0].shape == (2, 1)


def _bandit_episodes(n_episodes: int = 60, steps: int = 5, seed: int = 0) -> list[dict]:
    """Random actions in 3 arms on 4 contexts (Discrete observations); reward 1 for arm ``context % 3``."""
    rng = np.random.default_rng(seed)
    episodes = []
    for _ in range(n_episodes):
        contexts = rng.integers(0, 4, steps + 1)
        actions = rng.integers(0, 3, steps)
        rewards = (actions == contexts[:-1] % 3).astype(np.float64)
        episodes.append({"observations": contexts, "actions": actions, "rewards": rewards, "terminated": True})
    return episodes


def test_iql_on_discrete_actions_picks_the_rewarding_arm_that_random_data_hides(tmp_path):
    import gymnasium as gym

    spaces = gym.spaces.Discrete(4), gym.spaces.Discrete(3)
    config = IQLConfig(hidden=TINY, critic_lr=3e-3, value_lr=3e-3, actor_lr=3e-3)
    agent = IQLAgent(*spaces, config, device="cpu").fit(_bandit_episodes(), 400, batch_size=64, show_progress=False)
    contexts = np.arange(4)
    actions, _ = agent.predict(contexts)
    assert actions.shape == (4,) and actions.dtype == spaces[1].dtype
    np.testing.assert_array_equal(actions, contexts % 3)  # the data's actions are uniform: BC would not know
    single, _ = agent.predict(2)
    assert single.shape == () and int(single) == 2
    q = agent.q_function()(torch.zeros(3, 1), torch.tensor([[0.0], [1.0], [2.0]]))  # context 0, each arm
    assert q.shape == (3,) and int(q.argmax()) == 0
    sampled = agent.predict(np.zeros(200, np.int64), deterministic=False)[0]
    assert set(sampled.tolist()) <= {0, 1, 2} and np.mean(sampled == 0) > 0.5

    agent.save_pretrained(tmp_path / "iql")
    loaded = IQLAgent.from_pretrained(tmp_path / "iql", device="cpu")
    np.testing.assert_array_equal(loaded.predict(contexts)[0], actions)
    bad = _bandit_episodes(2)
    bad[0]["actions"] = bad[0]["actions"] + 3
    with pytest.raises(ValueError, match=r"categories 0 \.\. 2"):
        IQLAgent(*spaces, config, device="cpu").fit(bad, 1, show_progress=False)
