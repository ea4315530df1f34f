"""What a training run may do on its device: compile the step or not, train under bfloat16 autocast or not, and
whether one step's activations fit in the device's memory (checked before any work starts)."""

from __future__ import annotations

import torch

from .config import ModelConfig, TrainConfig
from .layout import TransitionLayout
from .spaces import device_memory


def is_compiler_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from torch's compiler stack failing to compile (Dynamo, Inductor, a backend: missing
    Triton or C compiler), not from the compiled code or the data. The backward graph is compiled lazily, inside
    ``loss.backward()``, where some torch releases raise Inductor's or Triton's own errors unwrapped."""
    from torch._dynamo.exc import TorchDynamoException  # imported here: torch._dynamo is slow to import

    return isinstance(exc, TorchDynamoException) or type(exc).__module__.startswith(("torch._inductor", "triton"))


AUTO_COMPILE_MIN_STEPS = 20_000
"""Under ``compile="auto"``, the fewest training steps for which compiling is expected to pay on CUDA: the
accelerator issue's prototype of this step (batch 256, H200) saved 3.5 ms a step (10.3 -> 6.8 ms) against tens of
seconds of compiling, which a 1500-step quick start never earns back. An estimate, not yet measured with this
package's own step on a GPU."""


def should_compile(setting: bool | str, device: torch.device, n_steps: int) -> bool:
    """Whether ``TrainConfig.compile`` means compiling a run of ``n_steps`` steps on ``device``: ``"auto"`` on CUDA
    for runs of at least :data:`AUTO_COMPILE_MIN_STEPS` steps."""
    if setting == "auto":
        return device.type == "cuda" and n_steps >= AUTO_COMPILE_MIN_STEPS
    return bool(setting)


def training_memory_estimate(
    model: ModelConfig, layout: TransitionLayout, n_bins: int, batch_size: int, element_size: int = 4
) -> int:
    """A lower bound of the bytes the activations of one training step keep for the backward pass: per token of
    every window, about 12 values per embedding dimension in each layer (attention and MLP inputs and outputs)
    and 3 per vocabulary entry (logits, their softmax and its gradient); attention matrices not counted."""
    tokens = layout.window_tokens(model.sequence_length) - 1  # (B, T) inputs of a step
    per_token = model.n_layer * 12 * model.n_embd + 3 * (n_bins + 1)
    return batch_size * tokens * per_token * element_size


def uses_bf16_autocast(config: TrainConfig, device: torch.device) -> bool:
    """Whether training on ``device`` runs under bfloat16 autocast: ``config.amp`` on a CUDA GPU with bf16
    arithmetic (Ampere on); older GPUs would only emulate it, slowly, and train in fp32."""
    if not (config.amp and device.type == "cuda"):
        return False
    with torch.cuda.device(device):  # the training GPU's answer, not the current one's
        return torch.cuda.is_bf16_supported(including_emulation=False)


def check_training_memory(
    model: ModelConfig, layout: TransitionLayout, n_bins: int, config: TrainConfig, device: torch.device
) -> None:
    """Refuse up front a batch whose activations cannot fit in the device's memory (e.g. ``batch_size=10**9``)."""
    element_size = 2 if uses_bf16_autocast(config, device) else 4
    need = training_memory_estimate(model, layout, n_bins, config.batch_size, element_size)
    have = device_memory(device)
    if have is not None and need > have:
        raise ValueError(
            f"TrainConfig.batch_size {config.batch_size}: one training step needs at least {need / 2**30:.1f} GiB "
            f"for its activations, the {device.type} device has {have / 2**30:.1f} GiB; use a smaller batch_size"
        )
