"""A sweep of bad inputs through the public API (docs/reliability.md): every one is a clear error at the point it is
given (an exception of the expected kind whose message names what is wrong), and the agent is unchanged after.

The counts of each class are what the reliability notes report; a case that stops raising, or raises something
unclear from deep inside torch or numpy, fails here.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from helpers import pendulum_episodes, tiny_config

from tt_agents import TTAgent
from tt_agents.baselines import IQLConfig
from tt_agents.config import DataConfig, ModelConfig, PlannerConfig, TokenizerConfig, TrainConfig

NAN = float("nan")

# ---------------------------------------------------------------------------------------------- configs

RANGE_ERRORS: list[tuple[type, str, object]] = [
    (TokenizerConfig, "n_bins", 1),
    (TokenizerConfig, "n_bins", 0),
    (TokenizerConfig, "strategy", "kmeans"),
    (DataConfig, "discount", NAN),
    (DataConfig, "discount", -0.1),
    (DataConfig, "discount", 1.5),
    (DataConfig, "validation_fraction", 1.0),
    (DataConfig, "validation_fraction", -0.1),
    (ModelConfig, "n_layer", 0),
    (ModelConfig, "n_head", 0),
    (ModelConfig, "n_embd", 30),  # not a multiple of n_head
    (ModelConfig, "dropout", 1.0),
    (ModelConfig, "dropout", -0.5),
    (ModelConfig, "attention_dropout", 2.0),
    (ModelConfig, "sequence_length", 0),
    (ModelConfig, "action_weight", -1.0),
    (ModelConfig, "value_weight", NAN),
    (ModelConfig, "target_smoothing", -1.0),
    (TrainConfig, "n_steps", 0),
    (TrainConfig, "n_epochs", 0.0),
    (TrainConfig, "n_epochs", math.inf),
    (TrainConfig, "min_epochs", -1.0),
    (TrainConfig, "batch_size", 0),
    (TrainConfig, "learning_rate", 0.0),
    (TrainConfig, "learning_rate", NAN),
    (TrainConfig, "min_lr_ratio", -0.1),
    (TrainConfig, "warmup_steps", -1),
    (TrainConfig, "betas", (1.0, 0.9)),
    (TrainConfig, "weight_decay", -1.0),
    (TrainConfig, "grad_clip", -1.0),
    (TrainConfig, "eval_every", -1),
    (TrainConfig, "checkpoint_every", -1),
    (TrainConfig, "eval_batches", 0),
    (TrainConfig, "compile", "sometimes"),
    (TrainConfig, "num_workers", -1),
    (PlannerConfig, "mode", "greedy"),
    (PlannerConfig, "beam_width", 0),
    (PlannerConfig, "n_expand", 0),
    (PlannerConfig, "horizon", 0),
    (PlannerConfig, "max_context_transitions", -1),
    (PlannerConfig, "k_obs", 0),
    (PlannerConfig, "k_act", 0),
    (PlannerConfig, "k_reward", 0),
    (PlannerConfig, "cdf_obs", 0.0),
    (PlannerConfig, "cdf_act", 1.5),
    (PlannerConfig, "discount", NAN),
    (PlannerConfig, "discount", 5.0),
    (PlannerConfig, "imitation_action", "mode"),
    (PlannerConfig, "bin_ranking", "width"),
    (PlannerConfig, "action_spread", -0.5),
    (PlannerConfig, "action_spread", float("inf")),
]
"""Values of the right type outside their field's range."""

CONFIG_CLASSES = (TokenizerConfig, DataConfig, ModelConfig, TrainConfig, PlannerConfig)
TYPE_ERRORS: list[tuple[type, str, object]] = [
    (cls, f.name, value)
    for cls in CONFIG_CLASSES
    for f in fields(cls)
    for value in ("32", [1], True)
    if not (value is True and f.type.startswith("bool"))
]
"""A string, a list and a bool for every field (a bool only where the field is not a switch)."""


@pytest.mark.parametrize(("cls", "name", "value"), RANGE_ERRORS + TYPE_ERRORS, ids=lambda x: repr(x)[:40])
def test_a_bad_config_field_is_refused_naming_the_field(cls, name, value) -> None:
    with pytest.raises((TypeError, ValueError), match=rf"{cls.__name__}.*{name}|{name}"):
        cls(**{name: value})


NOT_AGENT_CONFIGS = [{"model": {"n_layer": 2}}, "cpu", 5]
BAD_DEVICES = ["gpu", "cuda:7", 3, "tpu"]


@pytest.mark.parametrize("config", NOT_AGENT_CONFIGS, ids=repr)
def test_a_config_that_is_not_an_agent_config_is_refused(env_spaces, config) -> None:
    with pytest.raises(TypeError, match="AgentConfig"):
        TTAgent(*env_spaces, config=config, device="cpu")


@pytest.mark.parametrize("device", BAD_DEVICES, ids=repr)
def test_a_device_that_is_not_here_is_refused(env_spaces, device) -> None:
    if device == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 CUDA devices")
    with pytest.raises((TypeError, ValueError), match="device"):
        TTAgent(*env_spaces, device=device)


# ---------------------------------------------------------------------------------------------- training data


def _episodes_with(change) -> list[dict]:
    episodes = pendulum_episodes(n_episodes=3, steps=20)
    change(episodes[1])
    return episodes


def _set(key, value):
    def change(episode: dict) -> None:
        episode[key] = value(episode[key]) if callable(value) else value

    return change


def _with_nan_row(observations: np.ndarray) -> np.ndarray:
    observations = observations.copy()
    observations[3] = NAN
    return observations


BAD_DATA = {
    "no episodes": [],
    "NaN observation": _episodes_with(_set("observations", _with_nan_row)),
    "inf reward": _episodes_with(_set("rewards", lambda r: np.where(np.arange(len(r)) == 2, np.inf, r))),
    "observations of another width": _episodes_with(_set("observations", lambda o: o[:, :3])),
    "actions of another width": _episodes_with(_set("actions", lambda a: np.concatenate([a, a], 1))),
    "rewards one too short": _episodes_with(_set("rewards", lambda r: r[:-1])),
    "actions one too short": _episodes_with(_set("actions", lambda a: a[:-1])),
    "flat float actions": _episodes_with(_set("actions", lambda a: a[:, 0])),
    "terminations of the wrong length": _episodes_with(_set("terminations", np.zeros(5, dtype=bool))),
    "no actions key": _episodes_with(lambda e: e.pop("actions")),
    "string rewards": _episodes_with(_set("rewards", lambda r: r.astype(str))),
}


BAD_DATA_SAYS = {  # what the error must say of each
    "no episodes": "holds no episodes",
    "NaN observation": "episode 1: observations contain NaN or inf at step 3",
    "inf reward": "episode 1: rewards contain NaN or inf at step 2",
    "observations of another width": r"episode 1 has observation/action/goal sizes \(3, 1, 0\) but episode 0 has",
    "actions of another width": r"episode 1 has observation/action/goal sizes \(4, 2, 0\) but episode 0 has",
    "rewards one too short": "episode 1: actions have 20 steps but rewards have 19: one reward per action",
    "actions one too short": "episode 1: actions have 19 steps but rewards have 20: one reward per action",
    "flat float actions": r"episode 1: actions have shape \(20,\) of dtype float32: a Discrete action space's actions "
    "are integers",
    "terminations of the wrong length": "episode 1: terminations has 5 flags for 20 steps",
    "no actions key": r"episode 1: episode dict is missing key\(s\) \['actions'\]",
    "string rewards": "episode 1: rewards must be numeric",
}


@pytest.mark.parametrize("name", list(BAD_DATA))
def test_bad_training_data_is_refused_before_the_agent_changes(env_spaces, name) -> None:
    agent = TTAgent(*env_spaces, config=tiny_config(), device="cpu")
    before = json.dumps(agent.config.to_dict())
    with pytest.raises(ValueError, match=BAD_DATA_SAYS[name]):
        agent.fit(BAD_DATA[name], show_progress=False)
    assert agent.model is None and agent.dataset_info == {} and json.dumps(agent.config.to_dict()) == before


BAD_BUDGETS = [{"n_steps": 2.5}, {"n_steps": "10"}, {"n_epochs": -1.0}, {"n_epochs": NAN}, {"n_steps": 0}]


@pytest.mark.parametrize("budget", BAD_BUDGETS, ids=repr)
def test_a_bad_training_budget_is_refused(env_spaces, budget) -> None:
    agent = TTAgent(*env_spaces, config=tiny_config(), device="cpu")
    with pytest.raises((TypeError, ValueError), match="n_steps|n_epochs"):
        agent.fit(pendulum_episodes(n_episodes=2, steps=10), show_progress=False, **budget)
    assert agent.model is None


BAD_IQL_REQUESTS = {
    "settings as a dict": ({"q_function": "iql", "iql_config": {"expectile": 0.9}}, TypeError, "an IQLConfig"),
    "settings without IQL": ({"iql_config": IQLConfig.antmaze()}, ValueError, "q_function='iql'"),
}


@pytest.mark.parametrize("name", BAD_IQL_REQUESTS)
def test_iql_settings_fit_cannot_use_are_refused_before_training(env_spaces, name) -> None:
    agent = TTAgent(*env_spaces, config=tiny_config(), device="cpu")
    request, error, says = BAD_IQL_REQUESTS[name]
    with pytest.raises(error, match=says):
        agent.fit(pendulum_episodes(n_episodes=2, steps=10), show_progress=False, **request)
    assert agent.model is None and agent.iql is None


# ---------------------------------------------------------------------------------------------- acting

BAD_OBSERVATIONS = {
    "wrong width": np.zeros(3),
    "matrix of the wrong width": np.zeros((2, 5)),
    "NaN": np.array([0.0, NAN, 0.0, 0.0]),
    "inf": np.array([0.0, np.inf, 0.0, 0.0]),
    "a string": "obs",
    "a dict": {"observation": np.zeros(4)},
    "empty batch": np.zeros((0, 4)),
    "3-D": np.zeros((1, 1, 4)),
}
BAD_REWARDS = {"NaN": NAN, "inf": np.inf, "a string": "abc", "a list": [1.0, 2.0]}
BAD_STARTS = {"wrong length": np.array([True, False]), "a string": "yes", "floats": np.array([0.5])}


BAD_OBSERVATIONS_SAY = {  # what the error must say of each, from predict and from act
    "wrong width": r"expected shape \(4,\) or \(n_envs, 4\), got \(3,\)",
    "matrix of the wrong width": r"expected shape \(4,\) or \(n_envs, 4\), got \(2, 5\)",
    "NaN": "observation contains NaN or inf",
    "inf": "observation contains NaN or inf",
    "a string": "observation: expected a numeric array, got str",
    "a dict": "this agent expects an array observation of Box.*, got a dict",
    "empty batch": r"observation: an empty batch \(shape \(0, 4\)\)",
    "3-D": r"expected shape \(4,\) or \(n_envs, 4\), got \(1, 1, 4\)",
}


@pytest.mark.parametrize("name", list(BAD_OBSERVATIONS))
def test_a_bad_observation_is_refused_and_the_agent_acts_on(trained_agent, name) -> None:
    trained_agent.reset()
    expected = trained_agent.act(np.zeros(4))
    trained_agent.reset()
    with pytest.raises((TypeError, ValueError), match=BAD_OBSERVATIONS_SAY[name]):
        trained_agent.predict(BAD_OBSERVATIONS[name])
    with pytest.raises((TypeError, ValueError), match=BAD_OBSERVATIONS_SAY[name]):
        trained_agent.act(BAD_OBSERVATIONS[name])
    np.testing.assert_array_equal(trained_agent.act(np.zeros(4)), expected)


@pytest.mark.parametrize("name", list(BAD_REWARDS))
def test_a_bad_reward_is_refused_and_the_agent_acts_on(trained_agent, name) -> None:
    trained_agent.reset()
    trained_agent.act(np.zeros(4))
    second = trained_agent.act(np.full(4, 0.01), reward=1.0)
    trained_agent.reset()
    trained_agent.act(np.zeros(4))
    with pytest.raises((TypeError, ValueError), match="reward"):
        trained_agent.act(np.full(4, 0.01), reward=BAD_REWARDS[name])
    np.testing.assert_array_equal(trained_agent.act(np.full(4, 0.01), reward=1.0), second)


@pytest.mark.parametrize("name", list(BAD_STARTS))
def test_a_bad_episode_start_is_refused(trained_agent, name) -> None:
    with pytest.raises((TypeError, ValueError), match="episode_start"):
        trained_agent.predict(np.zeros((1, 4)), episode_start=BAD_STARTS[name])


BAD_PLANNER_CHANGES = [{"beam_width": 2.5}, {"horizon": "5"}, {"mode": "greedy"}, {"cdf_act": 0.0}, {"nonsense": 1}]


@pytest.mark.parametrize("change", BAD_PLANNER_CHANGES, ids=repr)
def test_a_bad_planner_change_is_refused_and_the_planner_kept(trained_agent, change) -> None:
    before = trained_agent.config.planner
    with pytest.raises((TypeError, ValueError), match="|".join(change)):
        trained_agent.configure_planner(**change)
    assert trained_agent.config.planner == before


# ---------------------------------------------------------------------------------------------- checkpoints


def _corrupt_weights(path) -> None:
    data = bytearray((path / "model.safetensors").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(255 - b for b in data[middle : middle + 64])
    (path / "model.safetensors").write_bytes(bytes(data))


def _nan_weights(path) -> None:
    tensors = safetensors.torch.load_file(path / "model.safetensors")
    first = sorted(tensors)[0]
    tensors[first] = torch.full_like(tensors[first], NAN)
    safetensors.torch.save_file(tensors, path / "model.safetensors")
    config = json.loads((path / "config.json").read_text())
    config.pop("sha256", None)  # as if written by hand, without a checksum: the finite check still holds
    (path / "config.json").write_text(json.dumps(config))


CHECKPOINT_FAULTS = {  # each damage, and what the error must say of it (after the checkpoint's path)
    "missing folder": (lambda path: __import__("shutil").rmtree(path), "no checkpoint directory at"),
    "missing weights": (lambda path: (path / "model.safetensors").unlink(), "is missing model.safetensors"),
    "truncated weights": (
        lambda path: (path / "model.safetensors").write_bytes((path / "model.safetensors").read_bytes()[:100]),
        r"model.safetensors cannot be read \(truncated or corrupt\?\)",
    ),
    "flipped bytes": (_corrupt_weights, "model.safetensors does not match the checksum recorded when it was saved"),
    "NaN weights": (_nan_weights, "model.safetensors: the weights '.*' hold NaN or infinite values"),
    "config not JSON": (lambda path: (path / "config.json").write_text("{not json"), "config.json is corrupt"),
    "config of another format": (
        lambda path: (path / "config.json").write_text(json.dumps({"format": "other"})),
        "config.json is not a tt-agents checkpoint config",
    ),
}


@pytest.mark.parametrize("name", list(CHECKPOINT_FAULTS))
def test_a_damaged_checkpoint_is_a_clear_error_naming_the_problem(trained_agent, tmp_path, name) -> None:
    path = tmp_path / "agent"
    trained_agent.save_pretrained(path)
    damage, says = CHECKPOINT_FAULTS[name]
    damage(path)
    with pytest.raises(
        (FileNotFoundError, ValueError), match=rf"{re.escape(str(path))}.*{says}|{says}.*{re.escape(str(path))}"
    ):
        TTAgent.from_pretrained(path, device="cpu")


def test_the_sweep_is_what_the_reliability_notes_count() -> None:
    notes = (Path(__file__).parents[1] / "docs" / "reliability.md").read_text()
    said = re.search(
        r"sweeps the public API with (\d+) bad inputs and (\d+) checkpoint faults.*?(\d+) config values.*?and (\d+) "
        r"values of the right type out of range\), (\d+) configs or\s+devices that are not, (\d+) kinds of malformed "
        r"training data and (\d+) bad budgets, (\d+) bad observations, rewards and\s+episode starts, (\d+) bad planner "
        r"changes, and (\d+) damaged checkpoints",
        notes,
        re.DOTALL,
    )
    assert said, "docs/reliability.md no longer describes the sweep in the words this test reads"
    counts = [
        len(RANGE_ERRORS) + len(TYPE_ERRORS),
        len(RANGE_ERRORS),
        len(NOT_AGENT_CONFIGS) + len(BAD_DEVICES),
        len(BAD_DATA),
        len(BAD_BUDGETS),
        len(BAD_OBSERVATIONS) + len(BAD_REWARDS) + len(BAD_STARTS),
        len(BAD_PLANNER_CHANGES),
        len(CHECKPOINT_FAULTS),
    ]
    inputs = sum(counts) - counts[1] - counts[-1]
    assert [int(n) for n in said.groups()] == [inputs, len(CHECKPOINT_FAULTS), *counts]
