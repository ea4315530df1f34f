"""Training logs: a CSV of a run's metrics (and TensorBoard event files where ``tensorboard`` is installed), and a
plot of the curves.

``metrics.csv`` has one row per logged step: ``step, train_loss, val_loss, val_cross_entropy, learning_rate,
tokens_per_s`` (empty where a metric was not measured at that step). A resumed run drops the rows after the step
it resumes from, so the file never holds two values of one step.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

from ._io import write_atomic

METRICS_FILE = "metrics.csv"
COLUMNS = ("step", "train_loss", "val_loss", "val_cross_entropy", "learning_rate", "tokens_per_s")


class TrainingLog:
    """Appends metrics to ``log_dir/metrics.csv`` and, where ``tensorboard`` is installed, to TensorBoard event
    files in ``log_dir``.

    Args:
        log_dir: the folder (created).
        resume_step: the step a resumed run continues from: rows (and TensorBoard events) after it are dropped.
    """

    def __init__(self, log_dir: str | os.PathLike[str], resume_step: int = 0) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.log_dir / METRICS_FILE
        kept = [row for row in read_training_log(self.path) if row["step"] <= resume_step] if resume_step else []
        write_atomic(self.path, lambda tmp: _write_rows(tmp, kept))
        self.tensorboard = _tensorboard_writer(self.log_dir, resume_step)

    def log(self, step: int, **metrics: float) -> None:
        """One row: ``metrics`` are among :data:`COLUMNS` (others are an error)."""
        unknown = set(metrics) - set(COLUMNS)
        if unknown:
            raise ValueError(f"TrainingLog: unknown metric(s) {sorted(unknown)}; known: {COLUMNS[1:]}")
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([step, *(_cell(metrics.get(name)) for name in COLUMNS[1:])])
        if self.tensorboard is not None:
            for name, value in metrics.items():
                self.tensorboard.add_scalar(name, value, step)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


def read_training_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of a ``metrics.csv``: ``step`` as int, the metrics as floats (NaN where empty); [] if no file."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [
            {"step": int(row["step"]), **{k: float(row[k]) if row[k] else math.nan for k in COLUMNS[1:]}}
            for row in csv.DictReader(f)
        ]


def plot_training_log(path: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Plot the loss curves, the validation cross-entropy and the learning rate of ``metrics.csv`` to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_training_log(path)
    if not rows:
        raise ValueError(f"{path}: no training metrics to plot")

    def series(name: str) -> tuple[list[int], list[float]]:
        points = [(r["step"], r[name]) for r in rows if not math.isnan(r[name])]
        return [p[0] for p in points], [p[1] for p in points]

    fig, (loss_ax, ce_ax, lr_ax) = plt.subplots(1, 3, figsize=(13, 3.6))
    loss_ax.plot(*series("train_loss"), label="train", lw=1)
    loss_ax.plot(*series("val_loss"), "o-", label="validation", ms=3)
    loss_ax.set(title="weighted loss", xlabel="step")
    loss_ax.legend()
    ce_ax.plot(*series("val_cross_entropy"), "o-", ms=3)
    ce_ax.set(title="validation cross-entropy (nats/token)", xlabel="step")
    lr_ax.plot(*series("learning_rate"))
    lr_ax.set(title="learning rate", xlabel="step")
    fig.tight_layout()
    out = Path(out)
    write_atomic(out, lambda tmp: fig.savefig(tmp, dpi=110, format=out.suffix.lstrip(".") or "png"))
    plt.close(fig)
    return out


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([row["step"], *(_cell(row[name]) for name in COLUMNS[1:])])


def _cell(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else repr(float(value))


def _tensorboard_writer(log_dir: Path, resume_step: int) -> Any:
    """A ``SummaryWriter`` (events after ``resume_step`` purged), or None when ``tensorboard`` is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(log_dir), purge_step=resume_step + 1 if resume_step else None)
