"""Training speed: steps/s and tokens/s of the package's training step, eager and compiled.

What it measures
    The :class:`~tt_agents.train.Trainer`'s own step (batch gather on the device, forward, weighted
    cross-entropy, backward, clipping, AdamW; bf16 autocast and fused AdamW on CUDA) on a hopper-sized layout
    (11 observation and 3 action dimensions, 16 tokens per transition) with a paper-sized Trajectory GPT
    (``ModelConfig()``: 4 layers, 4 heads, 128 dims, 10-transition windows, 159 input tokens) or the
    ``cpu_preset()`` network, over windows of random tokens. For each mode (``eager``; ``compiled``:
    ``TrainConfig.compile=True``) and batch size it times ``--steps`` steps after ``--warmup`` untimed ones
    (the first compiled steps compile), and reports milliseconds per step, steps/s, training tokens/s, the
    model's FLOPs per step (6 x matmul parameters x tokens plus attention) and the achieved share of a float32
    matmul peak measured in the same run. The warm-up time is printed too (for ``compiled``, mostly
    compilation).

How to run
    python benchmarks/training_speed.py                          # paper network, batch 64 and 256, this CPU
    python benchmarks/training_speed.py --device cuda --steps 50
    python benchmarks/training_speed.py --network cpu --batch-sizes 64 --threads 1

Target (printed, never asserted; from the project's accelerator issue): on a GPU, a paper-network step at
batch 256 in <= 4 ms.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from timing import environment_table, load_average, matmul_peak, synchronize

from tt_agents.config import AgentConfig, ModelConfig, TrainConfig, cpu_preset
from tt_agents.data_loading import Episode, TrajectoryData, WindowDataset
from tt_agents.model import TrajectoryGPT
from tt_agents.spaces import resolve_device
from tt_agents.tokenizer import Tokenizer
from tt_agents.train import Trainer

OBSERVATION_DIM, ACTION_DIM = 11, 3
TARGET_GPU_STEP_MS = 4.0


@dataclass
class Measurement:
    mode: str
    batch_size: int
    warmup_s: float
    step_ms: float
    tokens_per_step: int
    flops_per_step: float


def random_data(seed: int, n_episodes: int = 40, length: int = 250) -> tuple[TrajectoryData, Tokenizer]:
    """Windows over random episodes (hopper-sized); the timing does not depend on the values."""
    rng = np.random.default_rng(seed)
    episodes = [
        Episode(
            observations=rng.normal(size=(length + 1, OBSERVATION_DIM)),
            actions=rng.uniform(-1, 1, size=(length, ACTION_DIM)),
            rewards=rng.normal(size=length),
            terminated=False,
        )
        for _ in range(n_episodes)
    ]
    data = TrajectoryData.from_episodes(episodes, AgentConfig().data)
    tokenizer = Tokenizer(100).fit(data.token_columns())
    return data, tokenizer


def model_flops_per_step(model: TrajectoryGPT, batch_size: int, tokens: int) -> float:
    """Forward + backward FLOPs: 6 per matmul parameter per token, plus attention's scores and weighted sum
    (causal: about half of tokens x tokens per layer)."""
    c = model.config
    per_layer = 12 * c.n_embd * c.n_embd  # qkv (3), projection (1), MLP (8), in units of n_embd^2
    head = c.n_embd * (model.n_bins + 1)
    matmul = 6.0 * (c.n_layer * per_layer + head) * tokens * batch_size
    attention = 6.0 * 2 * c.n_layer * c.n_embd * tokens * tokens / 2 * batch_size
    return matmul + attention


def measure(
    model_config: ModelConfig, mode: str, batch_size: int, args: argparse.Namespace, device: torch.device
) -> Measurement:
    if mode == "compiled":
        torch._dynamo.reset()  # each batch size compiled afresh, not as a dynamic-shape graph of the one before
    data, tokenizer = random_data(args.seed)
    windows = WindowDataset(data, tokenizer, model_config.sequence_length)
    config = TrainConfig(
        n_steps=args.warmup, batch_size=batch_size, eval_every=0, checkpoint_every=0, compile=mode == "compiled"
    )
    torch.manual_seed(args.seed)
    model = TrajectoryGPT(data.layout, tokenizer.n_bins, model_config)
    trainer = Trainer(model, windows, None, config, device, show_progress=False)
    start = time.perf_counter()
    trainer.train(resume=False)
    synchronize(device)
    warmup_s = time.perf_counter() - start
    trainer.config = TrainConfig(**{**vars(config), "n_steps": args.warmup + args.steps})
    start = time.perf_counter()
    trainer.train(resume=False)
    synchronize(device)
    step_ms = (time.perf_counter() - start) / args.steps * 1e3
    tokens = windows.sequence_tokens - 1
    return Measurement(
        mode, batch_size, warmup_s, step_ms, tokens * batch_size, model_flops_per_step(model, batch_size, tokens)
    )


def results_table(results: list[Measurement], peak: float) -> Table:
    table = Table(title="Training step")
    for column in ("mode", "batch", "warm-up s", "ms/step", "steps/s", "tokens/s", "GFLOP/step", "% of peak"):
        table.add_column(column, justify="right")
    for r in results:
        achieved = r.flops_per_step / (r.step_ms / 1e3) / 1e9
        table.add_row(
            r.mode,
            str(r.batch_size),
            f"{r.warmup_s:.1f}",
            f"{r.step_ms:.1f}",
            f"{1e3 / r.step_ms:.1f}",
            f"{r.tokens_per_step / (r.step_ms / 1e3):,.0f}",
            f"{r.flops_per_step / 1e9:.1f}",
            f"{100 * achieved / peak:.1f}%",
        )
    return table


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--network", choices=("paper", "cpu"), default="paper", help="ModelConfig() or cpu_preset()")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    p.add_argument("--modes", nargs="+", choices=("eager", "compiled"), default=["eager", "compiled"])
    p.add_argument("--steps", type=int, default=5, help="timed steps per measurement (default 5)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation happens here)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--device", default="cpu", help='"cpu", "cuda", "cuda:N" or "auto" (cuda when available)')
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 1 or min(args.batch_sizes) < 1:
        p.error("--steps, --warmup and every batch size must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    console = Console(width=120)
    console.print(environment_table(device))
    model_config = ModelConfig() if args.network == "paper" else cpu_preset().model
    peak = matmul_peak(device)
    console.print(
        f"network: {args.network} ({model_config.n_layer} layers, {model_config.n_embd} dims, "
        f"{model_config.sequence_length}-transition windows); matmul peak (1024x1024 float32, best of 20): "
        f"{peak:.1f} GFLOP/s"
    )
    results = [
        measure(model_config, mode, batch_size, args, device) for batch_size in args.batch_sizes for mode in args.modes
    ]
    console.print(results_table(results, peak))
    if device.type == "cuda" and args.network == "paper":
        at_256 = [r for r in results if r.batch_size == 256]
        for r in at_256:
            verdict = "met" if r.step_ms <= TARGET_GPU_STEP_MS else "not met"
            console.print(f"target: {r.mode} step at batch 256 <= {TARGET_GPU_STEP_MS} ms: {r.step_ms:.2f}, {verdict}")
    console.print(f"load average (1 min) at the end: {load_average()}")


if __name__ == "__main__":
    main()
