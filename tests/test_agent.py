"""The agent's public contract: fit, SB3 predict, act, save/load, and clear errors."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from helpers import (
    CARTPOLE_ID,
    ENV_ID,
    FROZEN_LAKE_ID,
    cartpole_episodes,
    frozen_lake_episodes,
    pendulum_episodes,
    tiny_config,
)
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from tt_agents import CheckpointError, TTAgent
from tt_agents.baselines import IQLConfig


def test_fit_is_reproducible_with_a_seed(episodes, env_spaces) -> None:
    first = TTAgent(*env_spaces, config=tiny_config(n_steps=15), device="cpu").fit(episodes, show_progress=False)
    second = TTAgent(*env_spaces, config=tiny_config(n_steps=15), device="cpu").fit(episodes, show_progress=False)
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_fit_rejects_data_of_another_environment(episodes) -> None:
    agent = TTAgent(spaces.Box(-1, 1, (3,)), spaces.Box(-1, 1, (1,)), config=tiny_config(), device="cpu")
    before = agent.config.to_dict()
    with pytest.raises(ValueError, match="observation has 4 dimensions but the agent's space has 3"):
        agent.fit(episodes, n_steps=7, seed=5, show_progress=False)
    assert agent.config.to_dict() == before, "a refused fit changes no state"


def _training_windows(episodes, config) -> int:
    from tt_agents.data_loading import TrajectoryData, WindowDataset, load_episodes
    from tt_agents.tokenizer import Tokenizer

    data = TrajectoryData.from_episodes(load_episodes(episodes), config.data)
    train_part, _ = data.split(config.data.validation_fraction, config.train.seed)
    tokenizer = Tokenizer.from_config(config.tokenizer).fit(data.token_columns())
    return len(WindowDataset(train_part, tokenizer, config.model.sequence_length))


def test_a_budget_in_epochs_scales_with_the_data(episodes, env_spaces) -> None:
    config = tiny_config()
    agent = TTAgent(*env_spaces, config=config, device="cpu").fit(episodes, n_epochs=0.5, show_progress=False)
    windows = _training_windows(episodes, config)
    assert agent.config.train.n_steps == -(-windows // (2 * config.train.batch_size)) > 0
    assert agent.config.train.n_epochs == 0.5 and len(agent.history.train_loss) > 0
    assert agent.fit(episodes, n_steps=3, n_epochs=9.0, show_progress=False).config.train.n_steps == 3


def test_a_refit_starts_from_the_budget_asked_not_from_the_steps_of_the_last_fit(episodes, env_spaces) -> None:
    asked = tiny_config().train
    agent = TTAgent(*env_spaces, config=tiny_config(), device="cpu")
    agent.fit(episodes, n_steps=2, seed=1, show_progress=False)
    assert (agent.config.train.n_steps, agent.config.train.seed) == (2, 1)
    agent.fit(episodes[:2], show_progress=False)  # other data, no budget asked: the config's, not the last call's
    assert (agent.config.train.n_steps, agent.config.train.seed) == (asked.n_steps, asked.seed) != (2, 1)
    agent.config.train = replace(agent.config.train, n_steps=4)  # changed by hand in between: that is the budget
    assert agent.fit(episodes, show_progress=False).config.train.n_steps == 4


def test_numpy_numbers_are_taken_as_settings_and_budgets(episodes, env_spaces) -> None:
    from tt_agents.config import PlannerConfig, TokenizerConfig

    assert TokenizerConfig(n_bins=np.int64(500)).n_bins == 500 and type(TokenizerConfig(np.int64(7)).n_bins) is int
    assert type(PlannerConfig(discount=np.float32(0.5)).discount) is float
    agent = TTAgent(*env_spaces, config=tiny_config(), device="cpu").fit(episodes, np.int64(2), show_progress=False)
    assert agent.config.train.n_steps == 2 and type(agent.config.train.n_steps) is int
    agent.configure_planner(beam_width=np.int64(3))
    assert agent.config.planner.beam_width == 3
    with pytest.raises(TypeError, match="n_bins must be"):
        TokenizerConfig(n_bins=np.float64(3.0))


def test_min_epochs_raises_the_configs_step_budget_but_not_an_asked_one(episodes, env_spaces) -> None:
    config = tiny_config(n_steps=2)
    config.train = replace(config.train, min_epochs=0.5)
    floor = -(-_training_windows(episodes, config) // (2 * config.train.batch_size))
    assert floor > 2
    agent = TTAgent(*env_spaces, config=config, device="cpu").fit(episodes, show_progress=False)
    assert agent.config.train.n_steps == floor and len(agent.history.train_loss) > 0
    assert agent.config.train.min_epochs is None  # the saved config says what was trained
    config.train = replace(config.train, n_steps=10 * floor)
    longer = TTAgent(*env_spaces, config=config, device="cpu").fit(episodes, show_progress=False)
    assert longer.config.train.n_steps == 10 * floor
    config.train = replace(config.train, n_steps=2)
    asked = TTAgent(*env_spaces, config=config, device="cpu").fit(episodes, 3, show_progress=False)
    assert asked.config.train.n_steps == 3


def test_unsupported_spaces_are_rejected_up_front() -> None:
    with pytest.raises(TypeError, match="action_space MultiBinary.* several axes"):
        TTAgent(spaces.Box(-1, 1, (3,)), spaces.MultiBinary((2, 3)))
    with pytest.raises(TypeError, match=r"observation_space\['image'\] must be a flat"):
        TTAgent(
            spaces.Dict({"observation": spaces.Box(-1, 1, (2,)), "image": spaces.Box(0, 1, (2, 3))}),
            spaces.Box(-1, 1, (2,)),
        )
    with pytest.raises(TypeError, match="observation_space must be a flat"):
        TTAgent(spaces.Box(-1, 1, (2, 3)), spaces.Box(-1, 1, (2,)))
    with pytest.raises(TypeError, match="goal mode needs Dict observations"):
        TTAgent(
            spaces.Dict({"observation": spaces.Box(-1, 1, (2,))}),
            spaces.Box(-1, 1, (2,)),
            config=tiny_config(mode="goal"),
        )


def test_untrained_agent_says_so(env_spaces) -> None:
    agent = TTAgent(*env_spaces, device="cpu")
    with pytest.raises(RuntimeError, match="not trained"):
        agent.act(np.zeros(4))


def test_predict_single_and_batched_observations_stay_in_the_action_space(trained_agent) -> None:
    space = trained_agent.action_space
    action, state = trained_agent.predict(np.zeros(4, dtype=np.float32))
    assert action.shape == (1,) and space.contains(action)
    actions, state = trained_agent.predict(np.zeros((3, 4)), episode_start=np.ones(3, dtype=bool))
    assert actions.shape == (3, 1) and all(space.contains(a) for a in actions)
    actions, state = trained_agent.predict(np.ones((3, 4)) * 0.01, state=state, episode_start=np.zeros(3, dtype=bool))
    assert [len(env.actions) for env in state.envs] == [1, 1, 1], "the first step was filed in each env's context"
    _, state = trained_agent.predict(np.zeros((3, 4)), state=state, episode_start=np.array([True, False, False]))
    assert [len(env.actions) for env in state.envs] == [0, 2, 2], "episode_start clears only that env"


def test_act_files_the_real_reward_when_given(trained_agent) -> None:
    trained_agent.reset()
    trained_agent.act(np.zeros(4))
    trained_agent.act(np.full(4, 0.01), reward=7.5)
    assert trained_agent._act_state.envs[0].rewards == [7.5]
    trained_agent.act(np.full(4, 0.02))  # no reward: the model's prediction fills in
    predicted = trained_agent._act_state.envs[0].rewards[-1]
    assert predicted != 7.5 and np.isfinite(predicted)
    trained_agent.reset()
    assert trained_agent._act_state.envs[0].rewards == []


def test_act_is_for_one_environment_and_refuses_a_batch_before_filing_anything(trained_agent) -> None:
    trained_agent.reset()
    single = trained_agent.act(np.zeros(4))
    trained_agent.reset()
    assert np.array_equal(trained_agent.act(np.zeros((1, 4))), single), "a batch of one: its one action, (A,)"
    with pytest.raises(ValueError, match="act is for one environment, got 2 observations: use predict"):
        trained_agent.act(np.zeros((2, 4)), reward=1.0)
    assert trained_agent._act_state.rewards == [None] and len(trained_agent._act_state.envs[0].actions) == 0


@pytest.mark.parametrize(
    ("observation", "error", "match"),
    [
        (np.zeros(5), ValueError, r"expected shape \(4,\) or \(n_envs, 4\)"),
        (np.array([0.0, np.nan, 0.0, 0.0]), ValueError, "NaN"),
        ({"observation": np.zeros(4)}, TypeError, "expects an array observation of Box"),
        (np.zeros((2, 2, 4)), ValueError, "expected shape"),
        ("zeros", TypeError, "numeric array"),
    ],
)
def test_bad_observations_give_clear_errors(trained_agent, observation, error, match) -> None:
    with pytest.raises(error, match=match):
        trained_agent.predict(observation)


def test_state_of_another_batch_size_is_rejected(trained_agent) -> None:
    _, state = trained_agent.predict(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="batch of 3"):
        trained_agent.predict(np.zeros((3, 4)), state=state)
    with pytest.raises(TypeError, match="state must be the AgentState that predict returned.*tuple"):
        trained_agent.predict(np.zeros((2, 4)), state=(np.zeros(2),))  # e.g. a recurrent policy's state


def test_an_unknown_planner_setting_is_named_with_the_known_ones(trained_agent) -> None:
    before = trained_agent.config.planner
    with pytest.raises(TypeError, match=r"unknown setting\(s\) \['beam'\]; PlannerConfig's are .*'beam_width'"):
        trained_agent.configure_planner(beam=3, horizon=2)
    assert trained_agent.config.planner == before


@pytest.mark.parametrize(
    ("reward", "error", "match"),
    [
        (float("nan"), ValueError, "finite"),
        (float("inf"), ValueError, "finite"),
        ("abc", TypeError, "real number"),
        (True, TypeError, "real number"),
        (np.zeros(2), TypeError, "single real number"),
    ],
)
def test_a_bad_reward_is_refused_and_leaves_the_agent_usable(trained_agent, reward, error, match) -> None:
    trained_agent.reset()
    first = trained_agent.act(np.zeros(4))
    with pytest.raises(error, match=match):
        trained_agent.act(np.full(4, 0.01), reward=reward)
    env = trained_agent._act_state.envs[0]
    assert (len(env.observations), len(env.actions), len(env.rewards)) == (0, 0, 0) and env.pending is not None
    trained_agent.act(np.full(4, 0.01), reward=1.0)
    trained_agent.act(np.full(4, 0.02), reward=np.float32(2.0))
    assert trained_agent._act_state.envs[0].rewards == [1.0, 2.0]
    trained_agent.reset()
    np.testing.assert_array_equal(trained_agent.act(np.zeros(4)), first)


@pytest.mark.parametrize("episode_start", ["yes", [True], [True, False, True], [0.5, 0.0], [[True, False]] * 2])
def test_bad_episode_start_is_refused_before_any_state_changes(trained_agent, episode_start) -> None:
    _, state = trained_agent.predict(np.zeros((2, 4)))
    pending = [env.pending for env in state.envs]
    with pytest.raises(ValueError, match="episode_start must hold one bool per environment"):
        trained_agent.predict(np.zeros((2, 4)), state=state, episode_start=episode_start)
    assert [env.pending for env in state.envs] == pending
    trained_agent.predict(np.zeros((2, 4)), state=state, episode_start=np.array([True, False]))


def test_an_empty_batch_is_refused(trained_agent) -> None:
    with pytest.raises(ValueError, match="empty batch"):
        trained_agent.predict(np.zeros((0, 4)))


def test_reset_restores_the_planner_seed(trained_agent) -> None:
    trained_agent.seed(7)
    trained_agent.reset()
    first = [trained_agent.act(np.full(4, 0.01 * i)) for i in range(3)]
    trained_agent.act(np.ones(4))  # more sampling, in another episode
    trained_agent.reset()
    np.testing.assert_array_equal([trained_agent.act(np.full(4, 0.01 * i)) for i in range(3)], first)


@pytest.mark.parametrize(
    "budget", [{"n_steps": 0}, {"n_steps": -5}, {"n_epochs": 0.0}, {"n_steps": True}, {"n_steps": 2.5}]
)
def test_a_training_budget_that_is_not_positive_is_refused(episodes, env_spaces, budget) -> None:
    with pytest.raises(ValueError, match="must be a (positive|whole) number"):
        TTAgent(*env_spaces, config=tiny_config(), device="cpu").fit(episodes, **budget, show_progress=False)


def test_a_training_batch_too_large_for_the_device_is_refused_before_anything_changes(episodes, env_spaces) -> None:
    config = tiny_config()
    config.train = replace(config.train, batch_size=10**9)
    agent = TTAgent(*env_spaces, config=config, device="cpu")
    with pytest.raises(ValueError, match=r"batch_size 1000000000: .* needs at least .* GiB"):
        agent.fit(episodes, show_progress=False)
    assert agent.model is None and agent.dataset_info == {} and agent.config.train.batch_size == 10**9


def test_a_search_too_large_for_the_device_is_refused_before_it_allocates(trained_agent) -> None:
    trained_agent.configure_planner(beam_width=10**9)
    try:
        with pytest.raises(ValueError, match=r"beam_width 1000000000 .* needs at least .* GiB"):
            trained_agent.predict(np.zeros(4))
    finally:
        trained_agent.configure_planner(beam_width=tiny_config().planner.beam_width)


def test_data_that_trains_but_not_as_meant_is_warned_about(episodes, env_spaces) -> None:
    scaled = [{**e, "actions": np.asarray(e["actions"]) * 100} for e in episodes]
    agent = TTAgent(*env_spaces, config=tiny_config(n_steps=2), device="cpu")
    with pytest.warns(UserWarning, match="outside the action space"):
        agent.fit(scaled, show_progress=False)
    one_step = [
        {"observations": e["observations"][:2], "actions": e["actions"][:1], "rewards": e["rewards"][:1]}
        for e in episodes[:3]
    ]
    with pytest.warns(UserWarning, match="3 of 3 episodes have a single step"):
        agent.fit(one_step, show_progress=False)
    before = agent.config.to_dict()
    with pytest.raises(ValueError, match="the data holds 1 transition in 1 episode"):
        agent.fit(one_step[:1], show_progress=False)
    assert agent.config.to_dict() == before


def test_an_observation_far_outside_the_training_data_is_warned_about_once(trained_agent, tmp_path) -> None:
    agent = TTAgent.from_pretrained(trained_agent.save_pretrained(tmp_path / "fresh"), device="cpu")
    edges = agent.tokenizer.edges[agent.layout.observation_slice]  # (O, N + 1)
    low, high = edges[:, 0], edges[:, -1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        agent.predict((low + high) / 2)
        agent.predict(high + 0.5 * (high - low))  # outside, but not far: states a policy may reach
    far = (low + high) / 2
    far[2] = 1e6
    with pytest.warns(
        UserWarning, match=r"observation column 2 is 1e\+06, far outside the range the agent was trained"
    ):
        agent.predict(far)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        agent.predict(far)  # once per agent: an evaluation is not flooded


def test_data_whose_termination_is_a_success_is_warned_about_the_termination_penalty(episodes, env_spaces) -> None:
    lake = gym.make(FROZEN_LAKE_ID, is_slippery=False)
    lake_agent = TTAgent(lake.observation_space, lake.action_space, config=tiny_config(), device="cpu")
    with pytest.warns(UserWarning, match=r"terminal steps are rewarded above every other.*termination_penalty=None"):
        lake_agent.fit(frozen_lake_episodes(n_episodes=10), 2, show_progress=False)  # the goal's +1 is terminal
    costs = [{**e, "rewards": -np.ones(len(e["rewards"])), "terminated": True} for e in episodes]
    with pytest.warns(UserWarning, match="no step of the data has a positive reward"):
        TTAgent(*env_spaces, config=tiny_config(), device="cpu").fit(costs, 2, show_progress=False)
    no_penalty = tiny_config()
    no_penalty.data.termination_penalty = None
    cartpole = gym.make(CARTPOLE_ID)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        TTAgent(lake.observation_space, lake.action_space, config=no_penalty, device="cpu").fit(
            frozen_lake_episodes(n_episodes=10), 2, show_progress=False
        )
        TTAgent(cartpole.observation_space, cartpole.action_space, config=tiny_config(), device="cpu").fit(
            cartpole_episodes(n_episodes=3),
            2,
            show_progress=False,  # a fall ends a reward of 1 per step: a failure
        )
        box = spaces.Box(-1.0, 1.0, (2,))
        goal_space = spaces.Dict({"observation": box, "achieved_goal": box, "desired_goal": box})
        rng = np.random.default_rng(0)
        reached = [  # a goal bonus at the terminal step, which goal mode (likelihood only) never scores
            {
                "observations": {key: rng.uniform(-1, 1, (9, 2)) for key in goal_space.spaces},
                "actions": rng.uniform(-1, 1, (8, 2)),
                "rewards": np.r_[np.zeros(7), 1.0],
                "terminated": True,
            }
            for _ in range(4)
        ]
        TTAgent(goal_space, box, config=tiny_config(mode="goal"), device="cpu").fit(reached, 2, show_progress=False)


def test_a_default_budget_of_few_passes_is_warned_about_and_an_asked_one_is_not(episodes, env_spaces) -> None:
    agent = TTAgent(*env_spaces, config=tiny_config(n_steps=2), device="cpu")
    with pytest.warns(UserWarning, match=r"passes over the .* training windows.*n_epochs=5"):
        agent.fit(episodes, show_progress=False)  # the config's 2 steps: a fraction of one pass
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        agent.fit(episodes, 2, show_progress=False)  # asked for explicitly
        agent.fit(episodes, n_epochs=0.1, show_progress=False)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ([], "holds no episodes"),
        (
            [
                {
                    "observations": np.zeros((3, 4)),
                    "actions": np.zeros((3, 1)),
                    "rewards": np.zeros(3),
                    "terminations": [0, 1],
                }
            ],
            "terminations has 2 flags for 3 steps: give one per step .* one bool under 'terminated'",
        ),
        (
            [
                {
                    "observations": np.zeros((3, 4)),
                    "actions": np.zeros((3, 1)),
                    "rewards": np.zeros(3),
                    "truncations": [0],
                }
            ],
            "truncations has 1 flags for 3 steps",
        ),
    ],
)
def test_malformed_data_is_a_clear_error(env_spaces, data, match) -> None:
    with pytest.raises(ValueError, match=match):
        TTAgent(*env_spaces, config=tiny_config(n_steps=2), device="cpu").fit(data, show_progress=False)


def test_config_must_be_an_agent_config(env_spaces) -> None:
    with pytest.raises(TypeError, match="config must be an AgentConfig"):
        TTAgent(*env_spaces, config={"planner": {"beam_width": 4}})


def test_evaluate_policy_runs_unchanged_with_one_planner_call_per_step(trained_agent) -> None:
    calls = []
    plan = trained_agent.planner.plan

    def counting_plan(context):
        calls.append(len(context.observations))
        return plan(context)

    trained_agent.planner.plan = counting_plan
    try:
        venv = DummyVecEnv([lambda: Monitor(gym.make(ENV_ID, max_episode_steps=8))] * 4)
        mean, std = evaluate_policy(trained_agent, venv, n_eval_episodes=4)
    finally:
        del trained_agent.planner.plan
    assert np.isfinite(mean) and np.isfinite(std)
    assert calls and set(calls) == {4}, "every step plans all four environments in one call"


def test_same_seed_same_actions_and_reloaded_agent_acts_identically(trained_agent, tmp_path) -> None:
    path = trained_agent.save_pretrained(tmp_path / "agent")
    loaded = TTAgent.from_pretrained(path, device="cpu")
    observations = [np.array([0.0, 0.01 * i, -0.02, 0.01]) for i in range(5)]

    def rollout(agent: TTAgent) -> np.ndarray:
        agent.seed(123)
        agent.reset()
        return np.stack([agent.act(obs) for obs in observations])

    first = rollout(trained_agent)
    np.testing.assert_array_equal(first, rollout(trained_agent))
    np.testing.assert_array_equal(first, rollout(loaded))


def test_reloaded_model_gives_identical_logits(trained_agent, tmp_path) -> None:
    loaded = TTAgent.from_pretrained(trained_agent.save_pretrained(tmp_path / "agent"), device="cpu")
    tokens = torch.randint(0, trained_agent.tokenizer.n_bins, (3, 20))
    torch.testing.assert_close(trained_agent.model(tokens)[0], loaded.model(tokens)[0], rtol=0, atol=0)
    assert loaded.config == trained_agent.config
    assert loaded.dataset_info == trained_agent.dataset_info


def test_save_replaces_an_existing_checkpoint_atomically(trained_agent, tmp_path) -> None:
    path = tmp_path / "agent"
    trained_agent.save_pretrained(path)
    (path / "notes.txt").write_text("mine")
    trained_agent.save_pretrained(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent"], "no temporary directories left behind"
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors", "notes.txt", "tokenizer.json"]
    assert (path / "notes.txt").read_text() == "mine", "other files in the directory are kept"


def test_save_into_the_working_directory_keeps_the_users_files(trained_agent, tmp_path, monkeypatch) -> None:
    (tmp_path / "notes.txt").write_text("the user's")
    (tmp_path / "training").mkdir()
    monkeypatch.chdir(tmp_path)
    for path in (".", "", str(tmp_path)):
        trained_agent.save_pretrained(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "config.json",
        "model.safetensors",
        "notes.txt",
        "tokenizer.json",
        "training",
    ]
    loaded = TTAgent.from_pretrained(".", device="cpu")
    assert loaded.config == trained_agent.config


def test_flipped_bytes_in_the_weights_are_caught_by_the_checksum(trained_agent, tmp_path) -> None:
    path = trained_agent.save_pretrained(tmp_path / "agent")
    weights = bytearray((path / "model.safetensors").read_bytes())
    middle = len(weights) // 2
    weights[middle : middle + 64] = bytes(b ^ 0x40 for b in weights[middle : middle + 64])
    (path / "model.safetensors").write_bytes(bytes(weights))
    with pytest.raises(CheckpointError, match="model.safetensors does not match the checksum"):
        TTAgent.from_pretrained(path, device="cpu")


def test_weights_that_are_not_finite_are_refused_at_load(trained_agent, tmp_path) -> None:
    path = trained_agent.save_pretrained(tmp_path / "agent")
    agent = TTAgent.from_pretrained(path, device="cpu")
    with torch.no_grad():
        agent.model.blocks[0].attn.c_attn.weight[0, 0] = float("nan")
    agent.save_pretrained(path)
    with pytest.raises(CheckpointError, match="blocks.0.attn.c_attn.weight' hold NaN"):
        TTAgent.from_pretrained(path, device="cpu")


def test_truncated_weights_give_an_error_naming_the_file(trained_agent, tmp_path) -> None:
    path = trained_agent.save_pretrained(tmp_path / "agent")
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="model.safetensors"):
        TTAgent.from_pretrained(path)


def test_missing_and_corrupt_checkpoint_files_are_named(trained_agent, tmp_path) -> None:
    path = trained_agent.save_pretrained(tmp_path / "agent")
    (path / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        TTAgent.from_pretrained(path)
    path = trained_agent.save_pretrained(tmp_path / "agent2")
    (path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json"):
        TTAgent.from_pretrained(path)
    with pytest.raises(FileNotFoundError, match="no checkpoint directory"):
        TTAgent.from_pretrained(tmp_path / "nowhere")


def test_checkpoint_of_another_format_version_is_refused(trained_agent, tmp_path) -> None:
    path = trained_agent.save_pretrained(tmp_path / "agent")
    meta = json.loads((path / "config.json").read_text())
    meta["format_version"] = 99
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="format 99"):
        TTAgent.from_pretrained(path)


def test_weights_of_another_shape_are_refused(trained_agent, tmp_path) -> None:
    path = trained_agent.save_pretrained(tmp_path / "agent")
    meta = json.loads((path / "config.json").read_text())
    meta["config"]["model"]["n_embd"] = 64
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="does not match"):
        TTAgent.from_pretrained(path)


def test_fit_from_a_local_minari_dataset_records_reference_scores(tmp_path, monkeypatch, env_spaces) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    from tt_agents.data_making import inverted_pendulum_policy, record_dataset

    record_dataset(
        ENV_ID,
        inverted_pendulum_policy(0.3),
        "test/ip/expert-v0",
        n_episodes=3,
        max_episode_steps=60,
        ref_min_score=5.0,
        ref_max_score=60.0,
        show_progress=False,
    )
    agent = TTAgent(*env_spaces, config=tiny_config(n_steps=5), device="cpu").fit(
        "test/ip/expert-v0", show_progress=False
    )
    assert agent.dataset_info["dataset_id"] == "test/ip/expert-v0"
    assert agent.dataset_info["ref_min_score"] == 5.0 and agent.dataset_info["ref_max_score"] == 60.0


def test_unknown_minari_id_offline_is_one_clear_error(env_spaces, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    from tt_agents import DatasetNotAvailableError

    agent = TTAgent(*env_spaces, config=tiny_config(), device="cpu")
    with pytest.raises(DatasetNotAvailableError, match="make-dataset"):
        agent.fit("mujoco/hopper/medium-v0", show_progress=False)


def test_resumed_fit_continues_from_its_checkpoint(env_spaces, tmp_path) -> None:
    data = pendulum_episodes(n_episodes=4, steps=40)
    config = tiny_config(n_steps=20)
    config.train.checkpoint_every = 10
    TTAgent(*env_spaces, config=config, device="cpu").fit(data, checkpoint_dir=tmp_path, show_progress=False)
    resumed = TTAgent(*env_spaces, config=tiny_config(n_steps=30), device="cpu")
    resumed.fit(data, checkpoint_dir=tmp_path, show_progress=False)
    steps = [s for s, _ in resumed.history.train_loss]
    assert steps[0] == 10 and steps[-1] == 30, "the first 20 steps were not repeated"


def test_q_mode_with_iql_trained_on_the_same_data_reloads_and_acts_identically(episodes, env_spaces, tmp_path) -> None:
    agent = TTAgent(*env_spaces, config=tiny_config(n_steps=5, mode="q"), device="cpu")
    iql_config = replace(IQLConfig.antmaze(), hidden=(16, 16))
    agent.fit(episodes, show_progress=False, q_function="iql", q_steps=10, iql_config=iql_config)
    loaded = TTAgent.from_pretrained(agent.save_pretrained(tmp_path / "agent"), device="cpu")
    assert (tmp_path / "agent" / "q_function" / "model.safetensors").is_file() and loaded.iql is not None
    assert loaded.iql.config == agent.iql.config == iql_config
    observations = [np.array([0.0, 0.01 * i, -0.02, 0.01]) for i in range(3)]

    def rollout(a: TTAgent) -> np.ndarray:
        a.seed(7)
        a.reset()
        return np.stack([a.act(obs) for obs in observations])

    np.testing.assert_array_equal(rollout(agent), rollout(loaded))

    calls = []

    def push_right(obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:  # a Q-function of the user's own
        calls.append(len(obs))
        return 10.0 * act[:, 0]

    replaced = TTAgent.from_pretrained(tmp_path / "agent", device="cpu", q_function=push_right)
    assert replaced.iql is None and replaced.q_function is push_right, "the given Q-function, not the saved IQL"
    replaced.reset()
    replaced.act(observations[0])
    assert calls, "planning scored its leaves with the given Q-function"


def test_unknown_trainable_q_function_is_refused(episodes, env_spaces) -> None:
    agent = TTAgent(*env_spaces, config=tiny_config(n_steps=2), device="cpu")
    with pytest.raises(ValueError, match="iql"):
        agent.fit(episodes, show_progress=False, q_function="cql")


def test_goal_mode_and_goals_belong_to_goal_conditioned_agents_only(trained_agent) -> None:
    before = trained_agent.config.planner
    with pytest.raises(ValueError, match="goal mode needs a goal-conditioned agent"):
        trained_agent.configure_planner(mode="goal")
    assert trained_agent.config.planner == before
    with pytest.raises(TypeError, match="goal= is for goal-conditioned agents with Dict observations"):
        trained_agent.act(np.zeros(4), goal=np.zeros(2))


def test_goal_mode_ignores_other_dict_keys_and_refuses_a_q_function() -> None:
    box = spaces.Box(-1, 1, (2,))
    space = spaces.Dict({"observation": box, "desired_goal": box, "phase": spaces.Discrete(3)})
    agent = TTAgent(space, box, config=tiny_config(mode="goal"), device="cpu")
    assert agent.layout.goal_dim == 2 and agent.observation_keys is None
    with pytest.raises(ValueError, match="goal mode"):
        agent.fit([], q_function="iql")


def _as_dict_observations(episodes: list[dict]) -> list[dict]:
    """The pendulum episodes with their 4-D observations split into a Dict (keys in sorted order)."""
    return [
        {**ep, "observations": {"position": ep["observations"][:, :2], "velocity": ep["observations"][:, 2:]}}
        for ep in episodes
    ]


def _dict_space(box: spaces.Box) -> spaces.Dict:
    return spaces.Dict(
        {
            "position": spaces.Box(box.low[:2], box.high[:2], dtype=box.dtype),
            "velocity": spaces.Box(box.low[2:], box.high[2:], dtype=box.dtype),
        }
    )


@pytest.mark.parametrize("mode", ["reward", "q"])
def test_dict_observations_are_used_whole_and_act_like_the_flat_agent(episodes, env_spaces, mode, tmp_path) -> None:
    obs_space, act_space = env_spaces
    flat = TTAgent(obs_space, act_space, config=tiny_config(n_steps=10, mode=mode), device="cpu")
    flat.fit(episodes, show_progress=False, q_function="iql" if mode == "q" else None, q_steps=5)
    as_dict = TTAgent(_dict_space(obs_space), act_space, config=tiny_config(n_steps=10, mode=mode), device="cpu")
    as_dict.fit(
        _as_dict_observations(episodes), show_progress=False, q_function="iql" if mode == "q" else None, q_steps=5
    )
    assert as_dict.observation_keys == ("position", "velocity") and as_dict.layout == flat.layout
    loaded = TTAgent.from_pretrained(as_dict.save_pretrained(tmp_path / "dict"), device="cpu")
    batch = np.array([[0.0, 0.01 * i, -0.02, 0.01] for i in range(3)])  # (n_envs, O)
    dict_batch = {"position": batch[:, :2], "velocity": batch[:, 2:]}
    actions = []
    for agent, observation in ((flat, batch), (as_dict, dict_batch), (loaded, dict_batch)):
        agent.seed(3)
        actions.append(agent.predict(observation)[0])
    np.testing.assert_array_equal(actions[0], actions[1])
    np.testing.assert_array_equal(actions[1], actions[2])
    with pytest.raises(ValueError, match="missing"):
        as_dict.predict({"position": batch[:, :2]})


def _clipped_noise_episodes(n_episodes: int = 24, steps: int = 40, seed: int = 0) -> list[dict]:
    """A stochastic behaviour policy that ignores the state: actions N(0.3, 0.8) clipped to [-1, 1], so a fifth
    of them sit exactly at +1 (the data's most likely action) while their mean is about 0.25."""
    rng = np.random.default_rng(seed)
    return [
        {
            "observations": rng.normal(size=(steps + 1, 2)),
            "actions": np.clip(rng.normal(0.3, 0.8, size=(steps, 2)), -1.0, 1.0),
            "rewards": np.zeros(steps),
            "terminated": False,
        }
        for _ in range(n_episodes)
    ]


def test_imitation_acts_with_the_expected_action_not_the_most_likely_tokens() -> None:
    # The imitation collapse on stochastic data: each dimension's most likely token is an extreme action (+1
    # here; falling at once on a walker), while behaviour cloning would act near the mean.
    episodes = _clipped_noise_episodes()
    data_mean = np.mean(np.concatenate([e["actions"] for e in episodes]), axis=0)
    space = spaces.Box(-np.inf, np.inf, (2,))
    agent = TTAgent(space, spaces.Box(-1, 1, (2,)), config=tiny_config(n_steps=150, mode="imitation"), device="cpu")
    agent.fit(episodes, show_progress=False)
    observation = np.zeros(2)
    expected = agent.act(observation)
    agent.configure_planner(imitation_action="most_likely", k_act=1, cdf_act=None)
    agent.reset()
    most_likely = agent.act(observation)
    assert np.all(most_likely > 0.9), f"the most likely tokens are the clipped extreme, got {most_likely}"
    np.testing.assert_allclose(expected, data_mean, atol=0.2)
    assert np.allclose(agent.last_plan.actions[:, 0], most_likely)


def test_an_unbounded_action_space_trains_and_acts_inside_the_data_range() -> None:
    # Box(-inf, inf) actions: the bins come from the data, so the actions come back finite and inside its range
    rng = np.random.default_rng(0)
    episodes = [
        {
            "observations": rng.normal(size=(31, 2)),
            "actions": rng.normal(50.0, 3.0, size=(30, 2)),
            "rewards": np.ones(30),
        }
        for _ in range(4)
    ]
    unbounded = spaces.Box(-np.inf, np.inf, (2,))
    agent = TTAgent(unbounded, unbounded, config=tiny_config(n_steps=30, mode="imitation"), device="cpu")
    agent.fit(episodes, show_progress=False)
    actions, _ = agent.predict(np.zeros((3, 2)), deterministic=True)
    all_actions = np.concatenate([e["actions"] for e in episodes])
    assert actions.shape == (3, 2) and np.all(np.isfinite(actions))
    assert np.all(actions >= all_actions.min(0)) and np.all(actions <= all_actions.max(0))


def test_averaged_imitation_acts_in_an_episode_and_keeps_its_setting_across_a_save(trained_agent, tmp_path) -> None:
    trained_agent.save_pretrained(tmp_path / "plain")
    agent = TTAgent.from_pretrained(tmp_path / "plain", device="cpu")  # a copy: the shared fixture stays as it is
    agent.configure_planner(mode="imitation", average_contexts=True)
    plain = TTAgent.from_pretrained(tmp_path / "plain", device="cpu")
    plain.configure_planner(mode="imitation")
    env = gym.make(ENV_ID)
    observation, _ = env.reset(seed=0)
    agent.reset()
    np.testing.assert_array_equal(agent.act(observation), plain.act(observation))  # no past: nothing to average
    for _ in range(4):  # the context grows past the two transitions it keeps
        action = agent.act(observation)
        assert env.action_space.contains(action.astype(np.float32))
        observation, *_ = env.step(action)
    agent.save_pretrained(tmp_path / "averaged")
    assert TTAgent.from_pretrained(tmp_path / "averaged").config.planner.average_contexts
