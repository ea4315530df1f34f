"""Trainer: schedule, weight-decay split, learning, reproducibility and resume after an interruption."""

from __future__ import annotations

import json
import math
import runpy
from pathlib import Path

import pytest
import torch
from helpers import pendulum_episodes, tiny_config

from tt_agents.config import TrainConfig
from tt_agents.data_loading import TrajectoryData, WindowDataset, load_episodes
from tt_agents.model import TrajectoryGPT
from tt_agents.tokenizer import Tokenizer
from tt_agents.train import RunMismatchError, Trainer, learning_rate, make_optimizer


def test_learning_rate_warms_up_then_decays_and_stays_at_the_floor() -> None:
    cfg = TrainConfig(n_steps=1000, learning_rate=1e-3, warmup_steps=100, min_lr_ratio=0.1)
    assert learning_rate(0, cfg) == pytest.approx(1e-5)
    assert learning_rate(99, cfg) == pytest.approx(1e-3)
    rates = [learning_rate(s, cfg) for s in range(100, 3000)]
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False)), "must never climb back"
    assert learning_rate(1000, cfg) == pytest.approx(1e-4)
    assert learning_rate(2999, cfg) == pytest.approx(1e-4)


def test_weight_decay_applies_to_weight_matrices_only() -> None:
    model = TrajectoryGPT(tiny_layout(), 20, tiny_config().model)
    decay, no_decay = make_optimizer(model, TrainConfig()).param_groups
    decayed = {id(p) for p in decay["params"]}
    for name, p in model.named_parameters():
        expect = name == "head" or (name.endswith(".weight") and p.dim() == 2 and "emb" not in name)
        assert (id(p) in decayed) == expect, name
    assert no_decay["weight_decay"] == 0.0


def tiny_layout():
    from tt_agents.layout import TransitionLayout

    return TransitionLayout(4, 1)


def make_trainer(
    episodes,
    checkpoint_dir=None,
    n_steps: int = 30,
    seed: int = 0,
    compile: bool | str = False,
    dropout: float = 0.1,
    device: str = "cpu",
) -> Trainer:
    config = tiny_config(n_steps=n_steps)
    config.model.dropout = dropout
    config.train.checkpoint_every = 10
    config.train.seed = seed
    config.train.compile = compile
    data = TrajectoryData.from_episodes(load_episodes(episodes), config.data)
    tokenizer = Tokenizer(config.tokenizer.n_bins).fit(data.token_columns())
    train, val = data.split(0.2, seed=0)
    torch.manual_seed(seed)
    model = TrajectoryGPT(data.layout, tokenizer.n_bins, config.model)
    windows = WindowDataset(train, tokenizer, config.model.sequence_length)
    val_windows = WindowDataset(val, tokenizer, config.model.sequence_length)
    return Trainer(model, windows, val_windows, config.train, torch.device(device), checkpoint_dir, show_progress=False)


def test_training_lowers_validation_cross_entropy_well_below_uniform() -> None:
    trainer = make_trainer(pendulum_episodes(n_episodes=20, steps=100, noise=0.05), n_steps=400)
    before = trainer.evaluate()[1]
    history = trainer.train()
    after = history.val_cross_entropy[-1][1]
    uniform = math.log(20)
    assert before > 0.9 * uniform
    assert after < 0.75 * uniform, f"validation CE {after:.3f} vs uniform {uniform:.3f}"


def test_resume_after_interruption_matches_an_uninterrupted_run(episodes, tmp_path) -> None:
    uninterrupted = make_trainer(episodes, tmp_path / "a")
    uninterrupted.train()

    class Interrupt(Exception):
        pass

    def stop_at_25(trainer: Trainer) -> None:
        if trainer.step == 25:
            raise Interrupt  # as if killed: the last checkpoint is the one of step 20

    interrupted = make_trainer(episodes, tmp_path / "b")
    with pytest.raises(Interrupt):
        interrupted.train(callback=stop_at_25)
    resumed = make_trainer(episodes, tmp_path / "b", seed=0)
    resumed.train()
    assert resumed.step == uninterrupted.step == 30
    assert resumed.history.train_loss[-1] == pytest.approx(uninterrupted.history.train_loss[-1])
    for (name, a), b in zip(uninterrupted.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)


@pytest.mark.parametrize("other", ["seed", "data", "model"])
def test_a_checkpoint_of_another_run_is_refused_not_resumed(episodes, tmp_path, other) -> None:
    make_trainer(episodes, tmp_path, n_steps=10).train()
    other_data = pendulum_episodes(n_episodes=6, steps=30, noise=0.5, seed=3)

    def second_run() -> Trainer:
        if other == "seed":
            return make_trainer(episodes, tmp_path, n_steps=20, seed=5)
        if other == "data":
            return make_trainer(other_data, tmp_path, n_steps=20)
        return make_trainer(episodes, tmp_path, n_steps=20, dropout=0.0)

    second = second_run()
    before = {k: v.clone() for k, v in second.model.state_dict().items()}
    with pytest.raises(RunMismatchError, match="belongs to another training run"):
        second.train()
    assert second.step == 0 and all(torch.equal(before[k], v) for k, v in second.model.state_dict().items())
    second.train(resume=False)  # asked for: this run starts afresh there, and is the one that resumes now
    assert second.step == 20 and second_run().load_checkpoint()


def test_a_run_checkpointed_by_an_older_version_keeps_its_fingerprint() -> None:
    """A checkpoint written before a network setting existed (here the place embedding's) still resumes: the
    fixture holds the fingerprint that version computed for the same run."""
    fixture = Path(__file__).parent / "fixtures" / "run_fingerprint"
    recorded = json.loads((fixture / "fingerprint.json").read_text())["fingerprint"]
    assert runpy.run_path(str(fixture / "make_fixture.py"))["fingerprint"]() == recorded


def test_an_extended_run_resumes(episodes, tmp_path) -> None:
    make_trainer(episodes, tmp_path, n_steps=10).train()
    longer = make_trainer(episodes, tmp_path, n_steps=20)
    assert longer.load_checkpoint() and longer.step == 10


def test_a_resumed_run_uses_the_optimizer_kernel_of_its_own_device(episodes, tmp_path) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    make_trainer(episodes, tmp_path, n_steps=10).train()
    path = make_trainer(episodes, tmp_path).checkpoint_path
    with safe_open(path, "pt") as f:
        tensors, meta = {k: f.get_tensor(k) for k in f.keys()}, json.loads(f.metadata()["trainer"])
    for group in meta["optimizer"]["param_groups"]:
        group["fused"] = True  # as a run saved on CUDA, where the trainer takes the fused kernel
    save_file(tensors, path, metadata={"trainer": json.dumps(meta)})
    resumed = make_trainer(episodes, tmp_path, n_steps=20)
    assert resumed.load_checkpoint() and resumed.step == 10
    assert all(group["fused"] is None for group in resumed.optimizer.param_groups)
    steps = [state["step"] for state in resumed.optimizer.state.values()]
    assert steps and all(s.device.type == "cpu" and s.dtype == torch.float32 for s in steps)
    resumed.train()
    assert resumed.step == 20


def test_corrupt_trainer_checkpoint_is_reported_with_its_path(episodes, tmp_path) -> None:
    (tmp_path / "trainer_state.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="trainer_state.safetensors"):
        make_trainer(episodes, tmp_path).train()


def test_compiled_training_follows_the_eager_loss_curve(episodes) -> None:
    eager = make_trainer(episodes, n_steps=40, dropout=0.0)  # compiled dropout draws other random numbers
    compiled = make_trainer(episodes, n_steps=40, compile=True, dropout=0.0)
    assert compiled.compiled and not eager.compiled
    eager_curve = [loss for _, loss in eager.train().train_loss]
    compiled_curve = [loss for _, loss in compiled.train().train_loss]
    assert len(compiled_curve) == len(eager_curve) == 4
    assert compiled_curve == pytest.approx(eager_curve, rel=1e-3)


def dynamo_error() -> Exception:
    from torch._dynamo.exc import TorchDynamoException

    return TorchDynamoException("backend compiler failed: no working C compiler")


class TritonCompilationError(Exception):  # what a backward compiled lazily may raise unwrapped
    __module__ = "triton.compiler.errors"


def triton_error() -> Exception:
    return TritonCompilationError("no working C compiler for Triton's launcher")


@pytest.mark.parametrize("error", [dynamo_error, triton_error])
def test_a_compiler_that_fails_under_auto_falls_back_to_eager_training(episodes, monkeypatch, error) -> None:
    def failing_compile(module, **kwargs):
        def compiled(*args, **kw):
            raise error()

        return compiled

    eager_curve = [loss for _, loss in make_trainer(episodes, n_steps=20, dropout=0.0).train().train_loss]
    monkeypatch.setattr("tt_agents.train.should_compile", lambda setting, device, n_steps: True)  # as on CUDA
    monkeypatch.setattr(torch, "compile", failing_compile)
    trainer = make_trainer(episodes, n_steps=20, dropout=0.0, compile="auto")
    assert trainer.compiled
    with pytest.warns(RuntimeWarning, match="torch.compile failed on cpu .*no working C compiler.*without compiling"):
        curve = [loss for _, loss in trainer.train().train_loss]
    assert not trainer.compiled and curve == eager_curve
    asked = make_trainer(episodes, n_steps=20, dropout=0.0, compile=True)
    with pytest.raises(type(error()), match="no working C compiler"):  # asked for by name: not hidden
        asked.train()


def test_a_compiler_that_refuses_this_python_under_auto_trains_eagerly(episodes, monkeypatch) -> None:
    def unsupported(module, **kwargs):  # torch 2.5 on Python 3.13 raises in torch.compile itself
        raise RuntimeError("Dynamo is not supported on Python 3.13+")

    monkeypatch.setattr("tt_agents.train.should_compile", lambda setting, device, n_steps: True)  # as on CUDA
    monkeypatch.setattr(torch, "compile", unsupported)
    with pytest.warns(RuntimeWarning, match="torch.compile failed on cpu .*Python 3.13.*without compiling"):
        trainer = make_trainer(episodes, n_steps=10, dropout=0.0, compile="auto")
    assert not trainer.compiled and trainer.train().train_loss
    with pytest.raises(RuntimeError, match="Python 3.13"):  # asked for by name: not hidden
        make_trainer(episodes, n_steps=10, dropout=0.0, compile=True)


def test_under_compile_auto_errors_that_are_not_the_compilers_are_raised(episodes, monkeypatch) -> None:
    def out_of_memory(module, **kwargs):
        def compiled(*args, **kw):
            raise torch.OutOfMemoryError("CUDA out of memory")

        return compiled

    monkeypatch.setattr("tt_agents.train.should_compile", lambda setting, device, n_steps: True)
    monkeypatch.setattr(torch, "compile", out_of_memory)
    trainer = make_trainer(episodes, n_steps=5, compile="auto")
    with pytest.raises(torch.OutOfMemoryError):
        trainer.train()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
@pytest.mark.parametrize("compile", [False, True])
def test_cuda_training_follows_the_cpu_loss_curve(episodes, compile) -> None:
    cpu = make_trainer(episodes, n_steps=40, dropout=0.0)
    cuda = make_trainer(episodes, n_steps=40, dropout=0.0, device="cuda", compile=compile)
    assert cuda.use_amp and cuda.compiled == compile and cuda.train_data.batch(torch.tensor([0]))[0].is_cuda
    cpu_curve = [loss for _, loss in cpu.train().train_loss]
    cuda_curve = [loss for _, loss in cuda.train().train_loss]
    assert cuda_curve == pytest.approx(cpu_curve, rel=0.03)  # bfloat16 autocast on CUDA


def test_a_batch_too_large_for_the_device_is_refused_by_the_trainer(episodes) -> None:
    config = tiny_config()
    data = TrajectoryData.from_episodes(load_episodes(episodes), config.data)
    config.train.batch_size = 10**9
    tokenizer = Tokenizer(config.tokenizer.n_bins).fit(data.token_columns())
    model = TrajectoryGPT(data.layout, tokenizer.n_bins, config.model)
    windows = WindowDataset(data, tokenizer, config.model.sequence_length)
    with pytest.raises(ValueError, match="use a smaller batch_size"):
        Trainer(model, windows, None, config.train, torch.device("cpu"), show_progress=False)
