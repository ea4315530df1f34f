"""Tests of the baselines' checkpoints: save_pretrained/from_pretrained folders, the legacy single files, and
clear errors for corrupt or foreign files."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import safetensors.torch
import torch
from helpers import pendulum_episodes

from tt_agents import TrajectoryTransformerAgent
from tt_agents.baselines import BCAgent, GoalBCAgent, IQLAgent, IQLConfig
from tt_agents.baselines.checkpoint import CONFIG_FILE, MODEL_FILE
from tt_agents.data_loading import Episode, load_episodes
from tt_agents.envs import FOUR_ROOMS_ID

FIXTURES = Path(__file__).parent / "fixtures" / "baselines"
"""Single-file checkpoints (format ``tt_agents.baselines/2``) written by the earlier ``save``, with the outputs
those agents gave (``expected.json``): tiny networks trained for a few steps on InvertedPendulum and four rooms."""


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks run fastest on one thread


@pytest.fixture(scope="module")
def data() -> list[Episode]:
    return load_episodes(pendulum_episodes(n_episodes=4, steps=40, noise=1.0))


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((FIXTURES / "expected.json").read_text())


def assert_same_up_to_rounding(actual, recorded) -> None:
    """Outputs recorded on one CPU, read on another: float32 arithmetic may round the last bit otherwise."""
    np.testing.assert_allclose(actual, recorded, rtol=1e-5, atol=1e-6)


def test_bc_folder_round_trip_acts_and_trains_on_identically(data, env_spaces, tmp_path):
    agent = BCAgent(*env_spaces, hidden=(16,), device="cpu").fit(data, 10, 16, show_progress=False)
    path = agent.save_pretrained(tmp_path / "bc")
    assert path == tmp_path / "bc" and sorted(p.name for p in path.iterdir()) == [CONFIG_FILE, MODEL_FILE]
    config = json.loads((path / CONFIG_FILE).read_text())
    assert (config["format"], config["format_version"], config["kind"]) == ("tt_agents.baselines", 3, "BCAgent")
    loaded = BCAgent.from_pretrained(path, device="cpu")
    obs = data[1].observations
    np.testing.assert_array_equal(loaded.predict(obs)[0], agent.predict(obs)[0])
    # the optimizer state came back too: further training stays identical
    agent.fit(data, 5, 16, seed=3, show_progress=False)
    loaded.fit(data, 5, 16, seed=3, show_progress=False)
    np.testing.assert_array_equal(loaded.predict(obs)[0], agent.predict(obs)[0])


def test_iql_folder_round_trip_acts_and_trains_on_identically(data, env_spaces, tmp_path):
    agent = IQLAgent(*env_spaces, IQLConfig(hidden=(16,)), device="cpu").fit(data, 10, 16, show_progress=False)
    loaded = IQLAgent.from_pretrained(agent.save_pretrained(tmp_path / "iql"), device="cpu")
    obs = data[1].observations
    np.testing.assert_array_equal(loaded.predict(obs)[0], agent.predict(obs)[0])
    np.testing.assert_array_equal(loaded.value(obs), agent.value(obs))
    agent.fit(data, 5, 16, seed=3, show_progress=False)
    loaded.fit(data, 5, 16, seed=3, show_progress=False)
    np.testing.assert_array_equal(loaded.predict(obs)[0], agent.predict(obs)[0])
    assert loaded.history[-5:] == agent.history[-5:]


def test_loading_a_folder_unpickles_nothing(data, env_spaces, tmp_path, monkeypatch):
    agent = BCAgent(*env_spaces, hidden=(16,), device="cpu").fit(data, 2, show_progress=False)
    agent.save_pretrained(tmp_path / "bc")

    def no_pickle(*args, **kwargs):
        raise AssertionError("torch.load called on a checkpoint folder")

    monkeypatch.setattr(torch, "load", no_pickle)
    BCAgent.from_pretrained(tmp_path / "bc", device="cpu")


def test_save_keeps_other_files_and_a_failed_save_leaves_the_old_checkpoint(data, env_spaces, tmp_path, monkeypatch):
    agent = BCAgent(*env_spaces, hidden=(16,), device="cpu")
    path = agent.save_pretrained(tmp_path / "bc")
    (path / "notes.txt").write_text("mine")
    agent.fit(data, 3, show_progress=False).save_pretrained(path)
    assert (path / "notes.txt").read_text() == "mine"
    before = {p.name: p.read_bytes() for p in path.iterdir()}

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken_save)
    with pytest.raises(OSError, match="disk full"):
        agent.fit(data, 3, show_progress=False).save_pretrained(path)
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bc"], "no temporary folder is left behind"
    (tmp_path / "a_file").write_text("not a checkpoint")
    with pytest.raises(FileExistsError, match="is a file"):
        agent.save_pretrained(tmp_path / "a_file")


class _Payload:
    """Unpickling this would create a file: the proof that code from a checkpoint ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("where", ["legacy baseline file", "legacy TT q_function.pt", "trainer checkpoint"])
def test_a_pickle_payload_in_any_file_the_package_reads_is_refused_unrun(env_spaces, tmp_path, where):
    from tt_agents import TTAgent

    marker = tmp_path / "payload-ran"
    if where == "legacy baseline file":
        torch.save({"format": "tt_agents.baselines/2", "kind": _Payload(marker)}, tmp_path / "bc.pt")
        with pytest.raises(ValueError, match="not a readable tt_agents baseline checkpoint"):
            BCAgent.load(tmp_path / "bc.pt")
    elif where == "legacy TT q_function.pt":
        agent = TTAgent(*env_spaces, config=_tiny_tt_config(), device="cpu").fit(
            pendulum_episodes(n_episodes=3, steps=30), show_progress=False
        )
        path = agent.save_pretrained(tmp_path / "tt")
        config = json.loads((path / "config.json").read_text())
        (path / "config.json").write_text(json.dumps({**config, "q_function": "iql"}))
        torch.save({"format": "tt_agents.baselines/2", "kind": _Payload(marker)}, path / "q_function.pt")
        with pytest.raises(ValueError, match="not a readable tt_agents baseline checkpoint"):
            TTAgent.from_pretrained(path, device="cpu")
    else:
        from safetensors.torch import save_file

        (tmp_path / "run").mkdir()
        torch.save(_Payload(marker), tmp_path / "run" / "trainer_state.pt")  # the file earlier versions read
        save_file({"x": torch.zeros(1)}, tmp_path / "run" / "trainer_state.safetensors", metadata={"trainer": "{}"})
        agent = TTAgent(*env_spaces, config=_tiny_tt_config(), device="cpu")
        with pytest.raises(ValueError, match="belongs to another training run"):
            agent.fit(pendulum_episodes(n_episodes=3, steps=30), checkpoint_dir=tmp_path / "run", show_progress=False)
    assert not marker.exists(), "code from the file ran"


def _tiny_tt_config():
    from helpers import tiny_config

    return tiny_config(n_steps=2)


def test_flipped_bytes_and_non_finite_weights_are_refused(data, env_spaces, tmp_path):
    agent = IQLAgent(*env_spaces, IQLConfig(hidden=(16,)), device="cpu")
    path = agent.save_pretrained(tmp_path / "iql")
    weights = bytearray((path / MODEL_FILE).read_bytes())
    weights[-64:] = bytes(b ^ 0x40 for b in weights[-64:])
    (path / MODEL_FILE).write_bytes(bytes(weights))
    with pytest.raises(ValueError, match="model.safetensors does not match the checksum"):
        IQLAgent.from_pretrained(path)
    with torch.no_grad():
        next(agent.value_net.parameters()).view(-1)[0] = float("inf")
    agent.save_pretrained(path)
    with pytest.raises(ValueError, match="NaN or infinite"):
        IQLAgent.from_pretrained(path)


def test_corrupt_or_foreign_checkpoints_are_clear_errors(data, env_spaces, tmp_path):
    agent = BCAgent(*env_spaces, hidden=(16,), device="cpu")
    path = agent.save_pretrained(tmp_path / "bc")
    config_text = (path / CONFIG_FILE).read_text()

    (path / CONFIG_FILE).write_text(config_text[: len(config_text) // 2])
    with pytest.raises(ValueError, match="config.json is corrupt"):
        BCAgent.from_pretrained(path)
    (path / CONFIG_FILE).write_text(json.dumps({**json.loads(config_text), "format_version": 99}))
    with pytest.raises(ValueError, match="checkpoint format 99"):
        BCAgent.from_pretrained(path)
    (path / CONFIG_FILE).write_text(json.dumps({"format": "tt-agents", "format_version": 1}))
    with pytest.raises(ValueError, match="TTAgent.from_pretrained"):
        BCAgent.from_pretrained(path)
    settings = json.loads(config_text)
    settings["settings"]["hidden"] = [8]
    (path / CONFIG_FILE).write_text(json.dumps(settings))
    with pytest.raises(ValueError, match="does not hold a valid BCAgent"):
        BCAgent.from_pretrained(path)
    (path / CONFIG_FILE).write_text(config_text)
    BCAgent.from_pretrained(path)  # intact again
    with pytest.raises(
        ValueError,
        match="holds a BCAgent checkpoint, not a TrajectoryTransformerAgent's: load it with BCAgent.from_pretrained",
    ):
        TrajectoryTransformerAgent.from_pretrained(path)

    (path / MODEL_FILE).write_bytes((path / MODEL_FILE).read_bytes()[:100])
    with pytest.raises(ValueError, match="model.safetensors cannot be read"):
        BCAgent.from_pretrained(path)
    (path / MODEL_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="missing model.safetensors"):
        BCAgent.from_pretrained(path)
    with pytest.raises(FileNotFoundError, match="no baseline checkpoint"):
        BCAgent.from_pretrained(tmp_path / "nothing")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a readable tt_agents baseline checkpoint"):
        BCAgent.load(tmp_path / "junk.pt")


def test_legacy_single_file_checkpoints_still_load(expected, tmp_path):
    obs = np.array(expected["observations"])
    bc = BCAgent.load(FIXTURES / "bc.pt", device="cpu")
    assert_same_up_to_rounding(bc.predict(obs)[0], np.array(expected["bc_actions"], dtype=np.float32))

    iql = IQLAgent.from_pretrained(FIXTURES / "iql.pt", device="cpu")
    assert_same_up_to_rounding(iql.predict(obs)[0], np.array(expected["iql_actions"], dtype=np.float32))
    assert_same_up_to_rounding(iql.value(obs), np.array(expected["iql_values"], dtype=np.float32))
    q = iql.q_function()(torch.as_tensor(obs), torch.full((3, 1), 0.5))
    assert_same_up_to_rounding(q.numpy(), np.array(expected["iql_q"], dtype=np.float64))
    assert iql.reward_scale == expected["iql_reward_scale"]

    env = gym.make(FOUR_ROOMS_ID)
    goal = GoalBCAgent.load(FIXTURES / "goal_bc.pt", device="cpu")
    assert goal.observation_space == env.observation_space
    goal_obs = {k: np.array(v, dtype=np.float32) for k, v in expected["goal_observations"].items()}
    assert_same_up_to_rounding(goal.predict(goal_obs)[0], np.array(expected["goal_bc_actions"], np.float32))
    with pytest.raises(ValueError, match="holds a GoalBCAgent, not a BCAgent"):
        BCAgent.load(FIXTURES / "goal_bc.pt")

    # re-saved in the folder format, they act the same
    for agent, cls in ((bc, BCAgent), (iql, IQLAgent)):
        again = cls.from_pretrained(agent.save_pretrained(tmp_path / cls.kind), device="cpu")
        np.testing.assert_array_equal(again.predict(obs)[0], agent.predict(obs)[0])
    again = GoalBCAgent.from_pretrained(goal.save_pretrained(tmp_path / "goal"), device="cpu")
    np.testing.assert_array_equal(again.predict(goal_obs)[0], goal.predict(goal_obs)[0])


def test_checkpoints_of_the_first_format_still_load(env_spaces, expected, tmp_path):
    saved = torch.load(FIXTURES / "bc.pt", weights_only=True)

    def old_box(space):  # format 1 kept Box bounds as tensors
        return {"low": torch.as_tensor(space.low), "high": torch.as_tensor(space.high), "dtype": str(space.dtype)}

    saved.update(
        format="tt_agents.baselines/1", observation_space=old_box(env_spaces[0]), action_space=old_box(env_spaces[1])
    )
    torch.save(saved, tmp_path / "bc_v1.pt")
    loaded = BCAgent.load(tmp_path / "bc_v1.pt", device="cpu")
    assert loaded.observation_space == env_spaces[0] and loaded.action_space == env_spaces[1]
    obs = np.array(expected["observations"])
    assert_same_up_to_rounding(loaded.predict(obs)[0], np.array(expected["bc_actions"], dtype=np.float32))
