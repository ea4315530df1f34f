"""The paths a GPU run takes beyond the network and planner tests: Q mode with a learned critic, the baselines, and
checkpoints moved between devices, on every device this machine has (the CUDA cases run where CUDA exists); and
data recording, a CPU job, that must not start CUDA."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import tiny_config

from tt_agents import TTAgent
from tt_agents.baselines import BCAgent, IQLAgent, IQLConfig

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]
OBSERVATIONS = np.array([[0.0, 0.01, -0.02, 0.01], [0.02, -0.01, 0.0, 0.03], [-0.01, 0.0, 0.02, -0.02]])


@pytest.mark.parametrize("device", DEVICES)
def test_q_mode_with_an_iql_critic_plans_on_the_device(episodes, env_spaces, device, tmp_path) -> None:
    agent = TTAgent(*env_spaces, config=tiny_config(n_steps=5, mode="q"), device=device)
    iql_config = replace(IQLConfig.antmaze(), hidden=(16, 16))
    agent.fit(episodes, show_progress=False, q_function="iql", q_steps=10, iql_config=iql_config)
    actions, _ = agent.predict(OBSERVATIONS)
    assert actions.shape == (3, 1) and np.isfinite(actions).all()
    on_cpu = TTAgent.from_pretrained(agent.save_pretrained(tmp_path / "agent"), device="cpu")
    assert on_cpu.iql is not None and next(on_cpu.model.parameters()).device.type == "cpu"
    assert on_cpu.predict(OBSERVATIONS)[0].shape == (3, 1)


@pytest.mark.parametrize("device", DEVICES)
def test_a_network_trained_on_the_device_gives_the_same_logits_on_the_cpu(episodes, env_spaces, device, tmp_path):
    agent = TTAgent(*env_spaces, config=tiny_config(n_steps=10), device=device).fit(episodes, show_progress=False)
    on_cpu = TTAgent.from_pretrained(agent.save_pretrained(tmp_path / "agent"), device="cpu")
    tokens = torch.randint(0, agent.tokenizer.n_bins, (4, agent.model.block_size), generator=torch.Generator())
    with torch.no_grad():
        here = agent.model.eval()(tokens.to(agent.device))[0].float().cpu()  # (4, T, V)
        there = on_cpu.model.eval()(tokens)[0]
    torch.testing.assert_close(here, there, rtol=1e-4, atol=1e-4)  # fp32 planning on both: kernels differ only


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("baseline", ["bc", "iql"])
def test_baselines_train_on_the_device_and_act_alike_on_the_cpu(episodes, env_spaces, device, baseline, tmp_path):
    if baseline == "bc":
        agent = BCAgent(*env_spaces, (16, 16), device=device).fit(episodes, 20, show_progress=False)
    else:
        config = replace(IQLConfig(), hidden=(16, 16))
        agent = IQLAgent(*env_spaces, config=config, device=device).fit(episodes, 20, show_progress=False)
    assert len(agent.history) == 20 and all(np.isfinite(list(h.values())).all() for h in agent.history)
    agent.save_pretrained(tmp_path / baseline)
    on_cpu = type(agent).from_pretrained(tmp_path / baseline, device="cpu")
    np.testing.assert_allclose(on_cpu.predict(OBSERVATIONS)[0], agent.predict(OBSERVATIONS)[0], atol=1e-5)


def test_recording_a_dataset_starts_no_cuda_context() -> None:
    script = (
        "import torch\n"
        "from tt_agents.data_making import inverted_pendulum_policy\n"
        "from tt_agents.data_making.parallel_recording import record_episodes\n"
        "record_episodes('InvertedPendulum-v5', inverted_pendulum_policy(noise=0.1, seed=0), workers=1,"
        " n_episodes=1, max_episode_steps=20, show_progress=False)\n"
        "print(torch.cuda.is_initialized())\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip().splitlines()[-1] == "False"
