"""What a run may do on its device: when to compile, when to train under bf16, what a step's activations need."""

from __future__ import annotations

import torch
from helpers import pendulum_episodes, tiny_config

from tt_agents.config import TrainConfig
from tt_agents.data_loading import TrajectoryData, load_episodes
from tt_agents.training_device import (
    AUTO_COMPILE_MIN_STEPS,
    is_compiler_error,
    should_compile,
    training_memory_estimate,
    uses_bf16_autocast,
)


def test_compile_auto_means_cuda_only_and_runs_long_enough_to_pay() -> None:
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert should_compile("auto", cuda, 10**6) and not should_compile("auto", cpu, 10**6)
    assert should_compile("auto", cuda, AUTO_COMPILE_MIN_STEPS) and not should_compile("auto", cpu, 10**6)
    assert not should_compile("auto", cuda, 1500)  # the quick start: compiling would cost more than it saves
    assert should_compile(True, cpu, 10) and not should_compile(False, cuda, 10**6)


def test_only_the_compiler_stacks_own_errors_count_as_compiler_errors() -> None:
    from torch._dynamo.exc import Unsupported

    assert is_compiler_error(Unsupported("graph break"))
    assert not is_compiler_error(RuntimeError("Dynamo is not supported on Python 3.13+"))
    assert not is_compiler_error(torch.OutOfMemoryError("CUDA out of memory"))


def test_bf16_autocast_is_for_cuda_alone() -> None:
    assert not uses_bf16_autocast(TrainConfig(amp=True), torch.device("cpu"))
    assert not uses_bf16_autocast(TrainConfig(amp=False), torch.device("cpu"))


def test_the_activation_estimate_grows_with_the_batch_and_halves_in_bf16() -> None:
    config = tiny_config()
    data = TrajectoryData.from_episodes(load_episodes(pendulum_episodes(2)), config.data)
    small = training_memory_estimate(config.model, data.layout, 50, batch_size=8)
    assert small > 0
    assert training_memory_estimate(config.model, data.layout, 50, batch_size=80) == 10 * small
    assert training_memory_estimate(config.model, data.layout, 50, batch_size=8, element_size=2) * 2 == small
