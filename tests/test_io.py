"""Atomic writes: a failed write leaves the destination and its neighbours as they were."""

from __future__ import annotations

import json

import pytest

from tt_agents._io import atomic_directory, atomic_path, write_json_atomic


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path) -> None:
    target = tmp_path / "state.json"
    write_json_atomic(target, {"version": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half of a file")
        raise RuntimeError("interrupted")
    assert json.loads(target.read_text()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_directory_save_replaces_its_own_files_and_keeps_the_others(tmp_path) -> None:
    target = tmp_path / "agent"
    target.mkdir()
    (target / "model.bin").write_text("old")
    (target / "stale.bin").write_text("from an older save")
    (target / "notes.txt").write_text("the user's")
    with atomic_directory(target, own_names=("model.bin", "stale.bin")) as tmp:
        (tmp / "model.bin").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["model.bin", "notes.txt"]
    assert (target / "model.bin").read_text() == "new" and (target / "notes.txt").read_text() == "the user's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent"]


def test_a_failed_directory_save_loses_nothing(tmp_path) -> None:
    target = tmp_path / "agent"
    target.mkdir()
    (target / "model.bin").write_text("old")
    (target / "training").mkdir()
    (target / "training" / "state").write_text("resumable")
    with pytest.raises(OSError), atomic_directory(target, own_names=("model.bin",)) as tmp:
        (tmp / "model.bin").write_text("new")
        (tmp / "sub").mkdir()
        raise OSError("disk full")
    assert (target / "model.bin").read_text() == "old"
    assert (target / "training" / "state").read_text() == "resumable"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent"]


def test_a_swap_that_fails_puts_the_carried_files_back(tmp_path, monkeypatch) -> None:
    import os

    target = tmp_path / "agent"
    target.mkdir()
    (target / "model.bin").write_text("old")
    (target / "checkpoint").write_text("resumable")
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst) == str(target) and ".old-" not in str(src):  # the new folder's rename onto the target
            raise OSError("rename failed")
        real_replace(src, dst)

    monkeypatch.setattr("tt_agents._io.os.replace", failing_replace)
    with pytest.raises(OSError, match="rename failed"), atomic_directory(target, own_names=("model.bin",)) as tmp:
        (tmp / "model.bin").write_text("new")
    assert (target / "model.bin").read_text() == "old" and (target / "checkpoint").read_text() == "resumable"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent"]
