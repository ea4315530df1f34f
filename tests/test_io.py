"""Atomic writes: a failed or killed write leaves the destination whole and its neighbours as they were."""

from __future__ import annotations

import json

import pytest

from tt_agents._io import atomic_directory, atomic_path, reading_directory, write_json_atomic


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


def _save(target, generation: int, names=("a.bin", "b.bin")) -> None:
    with atomic_directory(target, own_names=(*names, "old.bin")) as tmp:
        for name in names:
            (tmp / name).write_text(str(generation) * 1000)


def _generations(target, names=("a.bin", "b.bin")) -> set[str]:
    with reading_directory(target):
        return {(target / name).read_text()[:1] for name in names}


def test_a_save_interrupted_after_its_commit_is_completed_by_the_next_read(tmp_path, monkeypatch) -> None:
    import os

    target = tmp_path / "agent"
    _save(target, 1)
    (target / "old.bin").write_text("from an older save")
    real_replace, calls = os.replace, []

    def replace_then_fail(src, dst):
        calls.append(dst)
        if str(dst).endswith("b.bin"):  # the second file of the committed set
            raise OSError("killed")
        real_replace(src, dst)

    monkeypatch.setattr("tt_agents._io.os.replace", replace_then_fail)
    with pytest.raises(OSError, match="killed"):
        _save(target, 2)
    monkeypatch.setattr("tt_agents._io.os.replace", real_replace)
    assert _generations(target) == {"2"} and not (target / "old.bin").exists()
    assert sorted(p.name for p in target.iterdir()) == ["a.bin", "b.bin"]


def test_a_save_killed_before_its_commit_leaves_the_old_set_and_its_debris_goes_at_the_next_save(tmp_path) -> None:
    target = tmp_path / "agent"
    _save(target, 1)
    dead = target / ".tt_agents-save-999999999-abc"  # a staging folder of a process that no longer exists
    dead.mkdir()
    (dead / "a.bin").write_text("2" * 1000)
    assert _generations(target) == {"1"}
    _save(target, 3)
    assert _generations(target) == {"3"} and sorted(p.name for p in target.iterdir()) == ["a.bin", "b.bin"]


@pytest.mark.parametrize("where", ["dot", "cwd", "link"])
def test_a_save_into_the_working_directory_or_through_a_link_touches_only_its_files(tmp_path, monkeypatch, where):
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "notes.txt").write_text("the user's")
    (folder / "training").mkdir()
    monkeypatch.chdir(folder)
    target = {"dot": ".", "cwd": str(folder), "link": tmp_path / "link"}[where]
    if where == "link":
        (tmp_path / "link").symlink_to(folder)
    _save(target, 1)
    _save(target, 2)
    assert (tmp_path / "link").is_symlink() if where == "link" else True
    assert sorted(p.name for p in folder.iterdir()) == ["a.bin", "b.bin", "notes.txt", "training"]
    assert _generations(folder) == {"2"} and (folder / "notes.txt").read_text() == "the user's"
    assert sorted(p.name for p in tmp_path.iterdir()) == (["link", "work"] if where == "link" else ["work"])


def _forked_saver(target, first: int, saves: int) -> int:
    """A child process (forked: no start-up cost) that saves generations first, first + 1, ... into ``target``."""
    import os

    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            for generation in range(first, first + saves):
                _save(target, generation % 10)
            code = 0
        finally:
            os._exit(code)
    return pid


def test_saves_killed_at_random_points_always_leave_one_whole_set(tmp_path) -> None:
    import os
    import random
    import signal
    import time

    target = tmp_path / "agent"
    _save(target, 0)
    (target / "notes.txt").write_text("the user's")
    rng, seen = random.Random(0), set()
    for attempt in range(30):
        pid = _forked_saver(target, attempt, saves=100_000)
        time.sleep(rng.uniform(0.001, 0.03))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        seen.add(tuple(sorted(p.name[:15] for p in target.iterdir())))
        assert len(_generations(target)) == 1, f"a mix of two saves after kill {attempt}"
    assert any(len(names) > 3 for names in seen), "no kill landed inside a save: the test did not test"
    _save(target, 5)
    assert sorted(p.name for p in target.iterdir()) == ["a.bin", "b.bin", "notes.txt"]


def test_two_processes_saving_into_one_folder_keep_its_other_files(tmp_path) -> None:
    import os

    target = tmp_path / "agent"
    target.mkdir()
    (target / "notes.txt").write_text("the user's")
    children = [_forked_saver(target, first, saves=200) for first in (0, 5)]
    assert [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children] == [0, 0]
    assert sorted(p.name for p in target.iterdir()) == ["a.bin", "b.bin", "notes.txt"]
    assert len(_generations(target)) == 1
