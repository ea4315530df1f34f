"""Timing helpers shared by the speed benchmarks: device synchronisation, a same-run matmul peak, timed calls,
and a table of what the timings ran on."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

import torch
from reports import cpu_model
from rich.table import Table


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU), so timings cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, size: int = 1024, trials: int = 20) -> float:
    """Best float32 GFLOP/s of a ``size`` x ``size`` matmul over ``trials`` runs (after 3 warm-ups)."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    best = float("inf")
    for i in range(trials + 3):
        synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
        if i >= 3:
            best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e9


def time_calls(fn: Callable[[], object], repeats: int, device: torch.device, warmup: bool = True) -> list[float]:
    """Milliseconds of each of ``repeats`` calls of ``fn`` (after one untimed warm-up call if ``warmup``)."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def load_average() -> str:
    """The 1-minute load average and the CPU count (other processes skew the timings)."""
    try:
        return f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    except OSError:
        return "n/a"


def environment_table(device: torch.device) -> Table:
    """What the timings ran on: torch and its threads, the CPU, the device, Python and the load at the start."""
    table = Table(title="Environment", show_header=False)
    table.add_row("torch", torch.__version__)
    table.add_row("threads", str(torch.get_num_threads()))
    table.add_row("CPU", cpu_model())
    table.add_row("device", str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    table.add_row("python", platform.python_version())
    table.add_row("load average (1 min) at start", load_average())
    return table
