"""Checkpoints saved by tt_agents 0.1.0 load with the current code and act exactly as they did then.

The fixtures in ``fixtures/tt_agent_v0_1`` were written by that version's ``save_pretrained`` (the script that made
them is next to them): a reward-mode agent, and a q-mode agent whose IQL Q-function is the single file
``q_function.pt`` of that version. ``expected.json`` holds the actions and plan scores they gave for fixed
observations and planner seeds; the current code must give the same actions bit for bit (the same tokens) and the
same scores up to float32 rounding (another CPU's vector kernels round a sum differently in the last bit).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tt_agents import AgentConfig, TTAgent
from tt_agents.baselines import IQLConfig
from tt_agents.spaces import space_to_dict

FIXTURES = Path(__file__).parent / "fixtures" / "tt_agent_v0_1"
AGENTS = ("reward_mode", "q_mode")
CONFIG_FILE, LEGACY_Q_FUNCTION_FILE, Q_FUNCTION_DIR = "config.json", "q_function.pt", "q_function"
"""Names in the checkpoint folder, spelled out: they are the saved format this test holds the code to."""


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks run fastest on one thread


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((FIXTURES / "expected.json").read_text())


def replay(agent: TTAgent, expected: dict) -> dict[str, list[np.ndarray]]:
    """What ``agent`` does on the recorded observations, in the order they were recorded: ``act`` on each
    observation after ``seed(0)`` and ``reset()``, then ``predict`` on each batch after ``seed(0)``."""
    agent.seed(0)
    agent.reset()
    keys = ("act_actions", "act_scores", "predict_actions", "predict_scores")
    done: dict[str, list[np.ndarray]] = {key: [] for key in keys}
    for obs in np.array(expected["act_observations"]):  # (steps, O)
        done["act_actions"].append(agent.act(obs))
        done["act_scores"].append(agent.last_plan.scores)
    agent.seed(0)
    state = None
    for obs in np.array(expected["predict_observations"]):  # (calls, n_envs, O)
        actions, state = agent.predict(obs, state=state)
        done["predict_actions"].append(actions)
        done["predict_scores"].append(agent.last_plan.scores)
    return done


def assert_acts_as_recorded(agent: TTAgent, expected: dict, name: str) -> None:
    """The actions of ``replay`` equal those recorded for the fixture ``name`` bit for bit, its plan scores up to
    float32 rounding."""
    for key, got in replay(agent, expected).items():
        want = np.array(expected["agents"][name][key], dtype=got[0].dtype)
        if key.endswith("actions"):
            np.testing.assert_array_equal(np.stack(got), want, err_msg=key)
        else:
            np.testing.assert_allclose(np.stack(got), want, rtol=1e-6, atol=0, err_msg=key)


def test_the_fixtures_come_from_the_previous_release(expected):
    assert (expected["commit"], expected["tt_agents_version"]) == ("552a8aa", "0.1.0")
    assert (FIXTURES / "q_mode" / LEGACY_Q_FUNCTION_FILE).is_file()
    assert not (FIXTURES / "q_mode" / Q_FUNCTION_DIR).exists()


@pytest.mark.parametrize("name", AGENTS)
def test_an_old_checkpoint_acts_exactly_as_it_did(name, expected):
    agent = TTAgent.from_pretrained(FIXTURES / name, device="cpu")
    assert_acts_as_recorded(agent, expected, name)


@pytest.mark.parametrize("name", AGENTS)
def test_an_old_checkpoint_keeps_its_config_spaces_and_data_summary(name):
    saved = json.loads((FIXTURES / name / CONFIG_FILE).read_text())
    agent = TTAgent.from_pretrained(FIXTURES / name, device="cpu")
    loaded = json.loads(json.dumps(agent.config.to_dict()))  # tuples as JSON lists, like the saved file
    defaults = json.loads(json.dumps(AgentConfig().to_dict()))
    assert set(loaded) == set(saved["config"])
    for section, values in saved["config"].items():
        # every saved setting comes back unchanged; settings added since that version hold their defaults
        assert loaded[section] == {**defaults[section], **values}, section
    assert agent.layout.to_dict() == saved["layout"]
    assert agent.tokenizer.n_bins == saved["n_bins"]
    assert space_to_dict(agent.observation_space) == saved["observation_space"]
    assert space_to_dict(agent.action_space) == saved["action_space"]
    assert agent.dataset_info == saved["dataset"]
    assert (agent.iql is not None) == (name == "q_mode")


def test_the_old_single_file_q_function_is_restored():
    agent = TTAgent.from_pretrained(FIXTURES / "q_mode", device="cpu")
    assert agent.config.planner.mode == "q"
    assert agent.iql.config == IQLConfig(hidden=(16, 16), batch_size=32)
    assert agent.q_function is not None


@pytest.mark.parametrize("name", AGENTS)
def test_an_old_checkpoint_saved_again_acts_the_same(name, expected, tmp_path):
    agent = TTAgent.from_pretrained(FIXTURES / name, device="cpu")
    path = agent.save_pretrained(tmp_path / name)
    assert not (path / LEGACY_Q_FUNCTION_FILE).exists()
    assert (path / Q_FUNCTION_DIR).is_dir() == (name == "q_mode")
    again = TTAgent.from_pretrained(path, device="cpu")
    assert again.config == agent.config
    assert_acts_as_recorded(again, expected, name)
