"""Data-parallel training (DistributedDataParallel over Gloo, two processes on this CPU): the same run as one
process at the same global batch, the first process alone writing checkpoints and logs, resume under DDP."""

from __future__ import annotations

import json
import os
import socket

import pytest
import safetensors.torch
import torch
import torch.multiprocessing as mp
from helpers import pendulum_episodes
from test_train import make_trainer

from tt_agents.distributed import distributed_rank_and_size, init_distributed
from tt_agents.training_log import METRICS_FILE, read_training_log

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _episodes() -> list[dict]:
    return pendulum_episodes(n_episodes=6, steps=60, noise=0.3)


class _Interrupted(Exception):
    pass


def _stop_at(step: int | None):
    def callback(trainer) -> None:
        if trainer.step == step:
            raise _Interrupted

    return callback


def _train_on_rank(rank: int, port: int, folder: str, n_steps: int, dropout: float, stop: int | None) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD))
    os.environ["LOCAL_RANK"] = str(rank)
    torch.set_num_threads(1)
    assert init_distributed(torch.device("cpu")) == torch.device("cpu")
    try:
        assert distributed_rank_and_size() == (rank, WORLD)
        trainer = make_trainer(_episodes(), checkpoint_dir=f"{folder}/run", n_steps=n_steps, dropout=dropout)
        trainer.log_dir = f"{folder}/logs"
        try:
            history = trainer.train(callback=_stop_at(stop))
        except _Interrupted:
            return
        state = {k: v.contiguous() for k, v in trainer.model.state_dict().items()}
        safetensors.torch.save_file(state, f"{folder}/weights{rank}.safetensors")
        with open(f"{folder}/loss{rank}.json", "w") as f:
            json.dump(history.train_loss, f)
        with open(f"{folder}/draws{rank}.json", "w") as f:  # where this process's random stream stands
            json.dump(torch.rand(4).tolist(), f)
    finally:
        torch.distributed.destroy_process_group()


def _ddp_run(
    folder, n_steps: int, dropout: float = 0.0, stop: int | None = None
) -> tuple[list, dict[str, torch.Tensor]] | None:
    mp.spawn(_train_on_rank, args=(_free_port(), str(folder), n_steps, dropout, stop), nprocs=WORLD, join=True)
    if stop is not None:
        return None
    weights = [safetensors.torch.load_file(folder / f"weights{r}.safetensors") for r in range(WORLD)]
    for name in weights[0]:
        torch.testing.assert_close(weights[0][name], weights[1][name], rtol=0, atol=0, msg=f"ranks differ: {name}")
    return json.loads((folder / "loss0.json").read_text()), weights[0]


# Weights are compared loosely: the two gradients differ only in the order of their sums, but Adam divides by
# the gradient's running scale, so rounding differences on near-zero gradients move a weight by up to a step.
def _one_process_run(n_steps: int, checkpoint_dir=None):
    torch.manual_seed(0)
    trainer = make_trainer(_episodes(), checkpoint_dir=checkpoint_dir, n_steps=n_steps, dropout=0.0)
    trainer.train()
    return [list(x) for x in trainer.history.train_loss], trainer.model.state_dict()


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch without distributed")
def test_two_processes_train_the_one_process_run_and_resume_it(tmp_path) -> None:
    ddp_loss, ddp_weights = _ddp_run(tmp_path, n_steps=20)
    loss, weights = _one_process_run(20, tmp_path / "one")
    assert [s for s, _ in ddp_loss] == [s for s, _ in loss] == [10, 20]
    assert [v for _, v in ddp_loss] == pytest.approx([v for _, v in loss], rel=1e-5)
    for name, value in weights.items():
        torch.testing.assert_close(ddp_weights[name], value, rtol=1e-3, atol=1e-3, msg=name)
    assert [r["step"] for r in read_training_log(tmp_path / "logs" / METRICS_FILE)] == [10, 20]

    ddp_loss, ddp_weights = _ddp_run(tmp_path, n_steps=30)  # the same run, extended: resumed from step 20
    loss, weights = _one_process_run(30, tmp_path / "one")  # and the one-process run, extended the same way
    assert [s for s, _ in ddp_loss] == [10, 20, 30]
    assert [v for _, v in ddp_loss] == pytest.approx([v for _, v in loss], rel=1e-5)
    for name, value in weights.items():
        torch.testing.assert_close(ddp_weights[name], value, rtol=1e-3, atol=1e-3, msg=name)
    assert [r["step"] for r in read_training_log(tmp_path / "logs" / METRICS_FILE)] == [10, 20, 30]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch without distributed")
def test_with_dropout_each_process_draws_its_own_masks_and_a_resumed_run_follows_the_uninterrupted_one(
    tmp_path,
) -> None:
    straight_loss, straight = _ddp_run(tmp_path / "straight", n_steps=30, dropout=0.2)
    _ddp_run(tmp_path / "resumed", n_steps=30, dropout=0.2, stop=20)  # interrupted after its step-20 checkpoint
    resumed_loss, resumed = _ddp_run(tmp_path / "resumed", n_steps=30, dropout=0.2)
    draws = [json.loads((tmp_path / "straight" / f"draws{r}.json").read_text()) for r in range(WORLD)]
    assert draws[0] != draws[1]  # each process draws its own dropout masks
    assert [v for _, v in resumed_loss] == pytest.approx([v for _, v in straight_loss], rel=1e-6)
    for name, value in straight.items():
        torch.testing.assert_close(resumed[name], value, rtol=1e-6, atol=1e-6, msg=name)
