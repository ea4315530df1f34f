"""Training logs: the CSV of a run's metrics, resumed runs, the plot, and the trainer writing them."""

from __future__ import annotations

import math

import pytest
from test_train import make_trainer

from tt_agents.training_log import COLUMNS, METRICS_FILE, TrainingLog, plot_training_log, read_training_log


def test_rows_read_back_with_empty_cells_as_nan(tmp_path) -> None:
    log = TrainingLog(tmp_path)
    log.log(10, train_loss=2.5, learning_rate=1e-3, tokens_per_s=1000.0)
    log.log(20, train_loss=2.0, val_loss=2.2, val_cross_entropy=3.1)
    log.close()
    rows = read_training_log(tmp_path / METRICS_FILE)
    assert [r["step"] for r in rows] == [10, 20] and set(rows[0]) == set(COLUMNS)
    assert rows[0]["train_loss"] == 2.5 and math.isnan(rows[0]["val_loss"]) and rows[1]["val_cross_entropy"] == 3.1
    with pytest.raises(ValueError, match="unknown metric"):
        log.log(30, accuracy=1.0)


def test_a_resumed_log_drops_the_rows_after_its_step(tmp_path) -> None:
    log = TrainingLog(tmp_path)
    for step in (10, 20, 30):
        log.log(step, train_loss=float(step))
    log.close()
    TrainingLog(tmp_path, resume_step=20).close()
    assert [r["step"] for r in read_training_log(tmp_path / METRICS_FILE)] == [10, 20]
    TrainingLog(tmp_path).close()  # a fresh run starts a fresh file
    assert read_training_log(tmp_path / METRICS_FILE) == []


def test_the_trainer_logs_every_ten_steps_and_every_validation_and_the_curves_plot(episodes, tmp_path) -> None:
    trainer = make_trainer(episodes, n_steps=30)
    trainer.config.eval_every = 15
    trainer.log_dir = tmp_path / "logs"
    trainer.train()
    rows = read_training_log(tmp_path / "logs" / METRICS_FILE)
    assert [r["step"] for r in rows] == [10, 15, 20, 30]
    assert all(r["train_loss"] > 0 and r["tokens_per_s"] > 0 for r in rows if r["step"] % 10 == 0)
    assert [r["step"] for r in rows if not math.isnan(r["val_cross_entropy"])] == [15, 30]
    assert rows[-1]["train_loss"] == pytest.approx(trainer.history.train_loss[-1][1])
    out = plot_training_log(tmp_path / "logs" / METRICS_FILE, tmp_path / "curves.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no training metrics"):
        plot_training_log(tmp_path / "missing.csv", tmp_path / "x.png")
