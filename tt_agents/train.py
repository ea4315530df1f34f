"""Training loop: AdamW with a weight-decay split, linear warmup then cosine, clipping, AMP, resume.

Batches are drawn with a generator seeded by ``(seed, step)``, and the checkpoint holds the model,
optimizer, schedule position and RNG states, so a run interrupted at any point and resumed from its last
checkpoint follows the same trajectory as an uninterrupted one (bit for bit on CPU).

Under ``torchrun`` (an initialised process group, see :mod:`tt_agents.distributed`) the model is wrapped in
``DistributedDataParallel``: every process draws the same global batch and trains on its own contiguous share,
the losses are weighted so that the averaged gradient is the global batch's, and the first process alone writes
checkpoints and logs; every process resumes from the same checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from rich.progress import TextColumn, TimeRemainingColumn
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ._io import make_progress, optimizer_state_from_flat, optimizer_state_to_flat, write_atomic
from .config import TrainConfig
from .data_loading import WindowDataset
from .distributed import distributed_rank_and_size
from .model import TrajectoryGPT
from .training_device import check_training_memory, is_compiler_error, should_compile, uses_bf16_autocast
from .training_log import TrainingLog

CHECKPOINT_NAME = "trainer_state.safetensors"


@dataclass
class TrainHistory:
    """Losses logged during training: ``(step, value)`` pairs."""

    train_loss: list[tuple[int, float]] = field(default_factory=list)
    val_loss: list[tuple[int, float]] = field(default_factory=list)
    val_cross_entropy: list[tuple[int, float]] = field(default_factory=list)
    """Unweighted mean cross-entropy per predicted token (nats); compare with log(n_bins)."""


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warmup to ``learning_rate``, then cosine down to ``learning_rate * min_lr_ratio``, then flat."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    span = max(1, config.n_steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    ratio = config.min_lr_ratio + (1.0 - config.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.learning_rate * ratio


def make_optimizer(model: nn.Module, config: TrainConfig, fused: bool = False) -> torch.optim.AdamW:
    """AdamW that decays weight matrices (Linear weights, output heads) but not biases, norms or embeddings.

    ``fused``: torch's fused AdamW kernel (one launch for all parameters; CUDA)."""
    decay, no_decay = [], []
    for module_name, module in model.named_modules():
        for name, p in module.named_parameters(recurse=False):
            full = f"{module_name}.{name}" if module_name else name
            is_matrix = isinstance(module, nn.Linear) and name == "weight"
            (decay if is_matrix or full == "head" else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.learning_rate, betas=config.betas, fused=fused or None)


class RunMismatchError(ValueError):
    """A training checkpoint belongs to another run than the one asked to resume from it."""


_UNFINGERPRINTED = (
    "n_steps",
    "n_epochs",
    "min_epochs",
    "eval_every",
    "eval_batches",
    "checkpoint_every",
    "compile",
    "num_workers",
)


_SETTINGS_ADDED_LATER = {"map_per_step": False, "place_frequencies": 0}
"""Network settings added after runs were checkpointed, with the value that builds the network those runs had: at
that value they stay out of the fingerprint, so such a run resumes with the newer code."""


def run_fingerprint(
    model: TrajectoryGPT, train_data: WindowDataset, val_data: WindowDataset | None, config: TrainConfig
) -> str:
    """What makes a training run itself: its windows (hence the data, data settings and tokenizer), the network's
    shape and the optimisation settings with the seed. A run may be extended (``n_steps``) or logged differently
    and stay the same run."""
    digest = hashlib.sha256()
    for windows in (train_data, val_data):
        if windows is not None:
            for tensor in windows.fingerprint_tensors():
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    settings = {k: v for k, v in asdict(config).items() if k not in _UNFINGERPRINTED}
    network = asdict(model.config)
    if network["map_shape"] is None:  # runs from before maps existed keep their fingerprint
        del network["map_shape"], network["map_classes"]
    for setting, older_network in _SETTINGS_ADDED_LATER.items():
        if network[setting] == older_network:  # runs from before the setting existed keep their fingerprint
            del network[setting]
    shape = {"model": network, "layout": model.layout.to_dict(), "n_bins": model.n_bins}
    digest.update(json.dumps({"train": settings, **shape}, sort_keys=True).encode())
    return digest.hexdigest()


class Trainer:
    """Trains a :class:`TrajectoryGPT` on a :class:`WindowDataset`.

    Args:
        model: the network (moved to ``device``).
        train_data: training windows.
        val_data: validation windows, or ``None``.
        config: optimisation settings.
        device: torch device.
        checkpoint_dir: where ``trainer_state.safetensors`` is written every ``config.checkpoint_every`` steps and
            at the end; ``None`` disables checkpoints.
        show_progress: draw a rich progress bar (loss, validation loss, tokens/s).
        log_dir: where the metrics go as ``metrics.csv`` (and TensorBoard events where ``tensorboard`` is
            installed; see :mod:`tt_agents.training_log`); ``None``: not logged.
    """

    def __init__(
        self,
        model: TrajectoryGPT,
        train_data: WindowDataset,
        val_data: WindowDataset | None,
        config: TrainConfig,
        device: torch.device,
        checkpoint_dir: str | Path | None = None,
        show_progress: bool = True,
        log_dir: str | Path | None = None,
    ) -> None:
        if len(train_data) == 0:
            raise ValueError("Trainer: the training set has no windows")
        check_training_memory(model.config, model.layout, model.n_bins, config, device)
        self.model = model.to(device)
        self.train_data = train_data
        self.val_data = val_data if val_data is not None and len(val_data) > 0 else None
        self.config = config
        self.device = device
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.show_progress = show_progress
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.optimizer = make_optimizer(model, config, fused=device.type == "cuda")
        self.step = 0
        self.history = TrainHistory()
        self.use_amp = uses_bf16_autocast(config, device)
        self.fingerprint = run_fingerprint(model, train_data, self.val_data, config)
        self.rank, self.world_size = distributed_rank_and_size()
        if config.batch_size % self.world_size:
            raise ValueError(
                f"TrainConfig.batch_size {config.batch_size} must split evenly across {self.world_size} processes"
            )
        module: nn.Module = self.model
        if self.world_size > 1:
            on_cuda = device.type == "cuda"
            index = (device.index if device.index is not None else torch.cuda.current_device()) if on_cuda else None
            # the model's buffers are constants: nothing to broadcast before every forward pass
            module = DistributedDataParallel(
                self.model, device_ids=[index] if on_cuda else None, broadcast_buffers=False
            )
        self.compiled = should_compile(config.compile, device, config.n_steps)
        self._module = module
        self._forward = module
        self._compile_unproven = self.compiled and config.compile == "auto"
        if self.compiled:
            try:
                self._forward = torch.compile(module)
            except RuntimeError as exc:  # e.g. a torch release whose compiler does not support this Python
                if not self._compile_unproven:
                    raise
                self._fall_back_to_eager(exc)
        self.train_data.to(device)  # windows resident on the device: a batch is one gather there
        if self.val_data is not None:
            self.val_data.to(device)

    # ---- batches -------------------------------------------------------------------------------------

    def _batch(self, data: WindowDataset, indices: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(inputs, targets, loss mask, maps or None) of windows ``indices``, on the device."""
        indices = indices.to(self.device, non_blocking=True)
        tokens, mask = data.batch(indices)  # (B, L), (B, L) on the device
        return tokens[:, :-1], tokens[:, 1:], mask[:, 1:], data.batch_maps(indices)

    def _train_indices(self, step: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + step)
        return torch.randint(len(self.train_data), (self.config.batch_size,), generator=generator)

    # ---- checkpoints ---------------------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path | None:
        return self.checkpoint_dir / CHECKPOINT_NAME if self.checkpoint_dir is not None else None

    def save_checkpoint(self) -> None:
        """Write model, optimizer, step, history and RNG state atomically: one safetensors file, its tensors by
        name and the rest as JSON in its metadata (nothing in it is unpickled when resuming)."""
        if self.checkpoint_path is None or self.rank != 0:  # under DDP the first process alone writes
            return
        optimizer_tensors, optimizer_rest = optimizer_state_to_flat(self.optimizer.state_dict(), "optimizer")
        tensors = {f"model.{k}": v.detach().contiguous() for k, v in self.model.state_dict().items()}
        tensors |= optimizer_tensors | {"rng.torch": torch.get_rng_state()}
        if self.device.type == "cuda":  # the training GPU's generator alone: a CPU run never starts CUDA here
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        meta = {
            "fingerprint": self.fingerprint,
            "step": self.step,
            "history": asdict(self.history),
            "optimizer": optimizer_rest,
            "config": asdict(self.config),
        }
        tensors = {k: v.cpu() for k, v in tensors.items()}
        write_atomic(self.checkpoint_path, lambda tmp: save_file(tensors, tmp, metadata={"trainer": json.dumps(meta)}))

    def load_checkpoint(self) -> bool:
        """Resume from ``checkpoint_dir`` if a checkpoint is there. Returns whether one was loaded."""
        path = self.checkpoint_path
        if path is None or not path.exists():
            return False
        try:
            with safe_open(path, framework="pt") as f:
                meta = json.loads(f.metadata()["trainer"])
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:  # a torn or foreign file: say which, keep the cause
            raise RuntimeError(f"Trainer: cannot resume from {path}: {exc}") from exc
        if meta.get("fingerprint") != self.fingerprint:
            raise RunMismatchError(
                f"{path} belongs to another training run (other data, model, tokenizer, optimisation settings or "
                "seed): resuming it would mix the two. Use another checkpoint directory, delete that one, or pass "
                "resume=False to start this run afresh there"
            )
        try:
            groups = {prefix: {} for prefix in ("model", "optimizer", "rng")}
            for name, tensor in tensors.items():
                prefix, rest = name.split(".", 1)
                groups[prefix][rest] = tensor
            self.model.load_state_dict(groups["model"])
            self.optimizer.load_state_dict(optimizer_state_from_flat(groups["optimizer"], meta["optimizer"]))
            fused = self.device.type == "cuda"
            for group in self.optimizer.param_groups:  # the kernel of this device, not the one the run was saved on
                group["fused"] = fused or None
                for p in group["params"]:  # the fused kernel reads its step counts on the parameter's device
                    state = self.optimizer.state.get(p, {})
                    if "step" in state:
                        state["step"] = state["step"].to(p.device if fused else "cpu", torch.float32)
        except Exception as exc:  # a torn or foreign file: say which, keep the cause
            raise RuntimeError(f"Trainer: cannot resume from {path}: {exc}") from exc
        self.step = int(meta["step"])
        self.history = TrainHistory(**{k: [tuple(x) for x in v] for k, v in meta["history"].items()})
        torch.set_rng_state(groups["rng"]["torch"])
        if self.device.type == "cuda" and "cuda" in groups["rng"]:  # saved by a CUDA run, of any number of GPUs
            torch.cuda.set_rng_state(groups["rng"]["cuda"], self.device)
        return True

    # ---- loop ----------------------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """Validation (weighted loss, unweighted cross-entropy per token) over fixed batches."""
        if self.val_data is None:
            return float("nan"), float("nan")
        self.model.eval()
        generator = torch.Generator().manual_seed(12345)
        total_loss = total_ce = total_tokens = 0.0
        for _ in range(self.config.eval_batches):
            indices = torch.randint(len(self.val_data), (self.config.batch_size,), generator=generator)
            inputs, targets, mask, maps = self._batch(self.val_data, indices)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.use_amp):
                logits, loss = self.model(inputs, targets, mask, maps)
            ce = nn.functional.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")  # (B, T)
            n = mask.sum().item()
            total_loss += loss.item() * n
            total_ce += (ce * mask).sum().item()
            total_tokens += n
        self.model.train()
        return total_loss / max(total_tokens, 1.0), total_ce / max(total_tokens, 1.0)

    def train(
        self,
        resume: bool = True,
        callback: Callable[[Trainer], None] | None = None,
    ) -> TrainHistory:
        """Run until ``config.n_steps``; resumes from the checkpoint directory first when ``resume``.

        ``callback(trainer)`` is called after every step (raise from it to stop early).
        """
        if resume:
            self.load_checkpoint()
        cfg = self.config
        self.model.train()
        progress = make_progress(
            TextColumn("loss {task.fields[loss]:.3f} val {task.fields[val]:.3f} {task.fields[speed]:,.0f} tok/s"),
            TimeRemainingColumn(),
            show=self.show_progress and self.rank == 0,
        )
        main = self.rank == 0  # under DDP the first process alone logs and shows progress
        log = TrainingLog(self.log_dir, resume_step=self.step) if self.log_dir is not None and main else None
        val_loss = self.history.val_loss[-1][1] if self.history.val_loss else float("nan")
        last_loss = self.history.train_loss[-1][1] if self.history.train_loss else float("nan")  # resumed runs
        self._tick = (time.perf_counter(), self.step)
        try:
            with progress:
                task = progress.add_task(
                    "training", total=cfg.n_steps, completed=self.step, loss=last_loss, val=val_loss, speed=0.0
                )
                while self.step < cfg.n_steps:
                    step_loss = self._train_step()  # a device tensor: read (a host sync) only when logged
                    self.step += 1
                    row = self._measure(step_loss)
                    if "val_loss" in row and self.show_progress and main:
                        progress.console.print(
                            f"step {self.step}: validation loss {row['val_loss']:.4f}, "
                            f"validation cross-entropy {row['val_cross_entropy']:.4f} nats/token"
                        )
                    if row and log is not None:
                        log.log(self.step, **row)
                    if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                        self.save_checkpoint()
                    last_loss = row.get("train_loss", last_loss)
                    val_loss = row.get("val_loss", val_loss)
                    progress.update(
                        task, completed=self.step, loss=last_loss, val=val_loss, speed=row.get("tokens_per_s", 0.0)
                    )
                    if callback is not None:
                        callback(self)
        finally:
            if log is not None:
                log.close()
        self.save_checkpoint()
        self.model.eval()
        return self.history

    def _measure(self, step_loss: torch.Tensor) -> dict[str, float]:
        """The metrics of the step just taken that are due (train loss, rate, speed every 10 steps and at the end;
        validation every ``eval_every``), filed in the history; {} when none is due."""
        cfg, row = self.config, {}
        if self.step % 10 == 0 or self.step == cfg.n_steps:
            if self.world_size > 1:  # the global batch's loss: the mean of the processes' weighted losses
                torch.distributed.all_reduce(step_loss)
                step_loss = step_loss / self.world_size
            row["train_loss"] = step_loss.item()
            self.history.train_loss.append((self.step, row["train_loss"]))
            now, (tick, tick_step) = time.perf_counter(), self._tick
            tokens = cfg.batch_size * (self.train_data.sequence_tokens - 1) * (self.step - tick_step)
            row["tokens_per_s"] = tokens / max(now - tick, 1e-9)
            row["learning_rate"] = learning_rate(self.step - 1, cfg)
            self._tick = (now, self.step)
        if cfg.eval_every and (self.step % cfg.eval_every == 0 or self.step == cfg.n_steps):
            row["val_loss"], row["val_cross_entropy"] = self.evaluate()
            self.history.val_loss.append((self.step, row["val_loss"]))
            self.history.val_cross_entropy.append((self.step, row["val_cross_entropy"]))
        return row

    def _loss_and_gradients(
        self, own: slice, inputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, maps: torch.Tensor | None
    ) -> torch.Tensor:
        """Forward and backward of this process's part ``own`` of the global batch; returns the loss."""
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.use_amp):
            _, loss = self._forward(inputs[own], targets[own], mask[own], None if maps is None else maps[own])
        if self.world_size > 1:  # weigh by the share of counted targets: DDP's mean is then the global mean
            loss = loss * self.world_size * mask[own].sum().clamp_min(1.0) / mask.sum().clamp_min(1.0)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        return loss

    def _fall_back_to_eager(self, exc: BaseException) -> None:
        """Under ``compile="auto"``, when the compiler fails (no Triton or C compiler, an unsupported GPU or
        Python): say so and train eagerly; ``compile=True`` raises instead."""
        first_line = (str(exc).splitlines() or [""])[0][:200]
        warnings.warn(
            f"torch.compile failed on {self.device} ({type(exc).__name__}: {first_line}); "
            "training continues without compiling (TrainConfig.compile=False skips the attempt)",
            RuntimeWarning,
            stacklevel=3,
        )
        self.compiled, self._forward, self._compile_unproven = False, self._module, False

    def _train_step(self) -> torch.Tensor:
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(self.step, self.config)
        batch = self._batch(self.train_data, self._train_indices(self.step))  # the global batch
        share = self.config.batch_size // self.world_size
        own = slice(self.rank * share, (self.rank + 1) * share)  # this process's part of it
        if self.world_size > 1:  # each process its own dropout masks, drawn from (seed, step, rank): resumable
            torch.manual_seed((self.config.seed * 1_000_003 + self.step) * 4099 + self.rank)
        try:
            loss = self._loss_and_gradients(own, *batch)
        except Exception as exc:
            if not (self._compile_unproven and is_compiler_error(exc)):
                raise
            self._fall_back_to_eager(exc)
            loss = self._loss_and_gradients(own, *batch)
        self._compile_unproven = False
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        return loss.detach()
