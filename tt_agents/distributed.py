"""Data-parallel training under ``torchrun``: joining the process group and this process's rank."""

from __future__ import annotations

import os

import torch


def distributed_rank_and_size() -> tuple[int, int]:
    """This process's rank and the number of processes of the initialised process group ((0, 1) without one)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def init_distributed(device: torch.device) -> torch.device:
    """Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment): join the process group (NCCL on CUDA, Gloo on
    the CPU) if not joined yet, and return this process's device (``cuda:LOCAL_RANK`` on CUDA). Otherwise
    ``device`` unchanged."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def leave_distributed() -> None:
    """Leave the process group, if one was joined (NCCL warns at exit about a group never destroyed)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
