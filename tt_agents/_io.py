"""The one atomic-write helper, the one progress-bar factory and the one optimizer-state layout every module uses.

Atomic writes go to a temporary file in the destination's own folder, are flushed to disk, then renamed over the
destination (``os.replace``), so a reader sees either the old file or the new one, never half of one; a failed
write leaves the destination untouched and removes its temporary file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn


class CheckpointError(ValueError):
    """A checkpoint file is missing a piece, corrupt, or does not match what reads it."""


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block ends without error, move it onto ``path``.

    The caller writes the whole file to the yielded path (with any writer: ``torch.save``,
    ``safetensors.torch.save_file``, ``Path.write_text``). Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


_STAGING_PREFIX = ".tt_agents-save-"
_JOURNAL = ".tt_agents-save.json"


@contextmanager
def atomic_directory(path: str | os.PathLike[str], own_names: Collection[str]) -> Iterator[Path]:
    """Yield an empty staging folder inside folder ``path`` to write a set of files into; when the block ends
    without error, they replace ``path``'s files of the same set (``own_names``) as one commit.

    Only entries named in ``own_names`` are ever touched (a user's files, a training checkpoint, the folder
    itself, a symbolic link to it are left alone), so ``path`` may be ``"."``, the working directory or a link.
    The commit is a journal: the staged set is made durable, then a journal naming it is written atomically,
    then the files are renamed into place and the journal removed. A save killed before the journal leaves the
    old set whole (its staging folder is removed by the next save); one killed after it is completed by the next
    save or read (:func:`reading_directory`), so readers see the old set or the new one, never a mix.
    Concurrent saves to one folder are serialised by a lock on the folder; the last to commit wins, whole.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} is a file, not a folder")
    path.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{os.getpid()}-", dir=path))
    try:
        yield staging
        names = sorted(entry.name for entry in staging.iterdir())
        foreign = set(names) - set(own_names)
        if foreign:
            raise ValueError(f"atomic_directory: {sorted(foreign)} are not among the folder's own names")
        _fsync_tree(staging)
        with _folder_lock(path):
            _roll_forward(path)
            _remove_stale_staging(path)
            journal = {"staging": staging.name, "install": names, "remove": sorted(set(own_names) - set(names))}
            write_json_atomic(path / _JOURNAL, journal)
            _fsync_dir(path)
            _roll_forward(path)
    finally:
        if staging.exists() and _journal_staging(path) != staging.name:
            shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def reading_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold folder ``path`` still while its files are read: no save commits meanwhile, and a save that was killed
    after its commit (see :func:`atomic_directory`) is completed first. Yields ``path``."""
    path = Path(path)
    with _folder_lock(path):
        _roll_forward(path)
        yield path


def _journal_staging(path: Path) -> str | None:
    try:
        return json.loads((path / _JOURNAL).read_text())["staging"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _roll_forward(path: Path) -> None:
    """Install the set named by ``path``'s journal, if any (every step can be repeated after a kill)."""
    journal_path = path / _JOURNAL
    if not journal_path.is_file():
        return
    journal = json.loads(journal_path.read_text())
    staging = path / journal["staging"]
    replaced = staging / ".replaced"  # old entries moved out of the way, removed with the staging folder
    for name in journal["remove"]:
        if (path / name).exists() or (path / name).is_symlink():
            replaced.mkdir(parents=True, exist_ok=True)
            _move_aside(path / name, replaced / name)
    for name in journal["install"]:
        if not (staging / name).exists():
            continue  # installed before the kill
        if (path / name).is_dir() and not (path / name).is_symlink():  # a folder cannot be renamed over
            replaced.mkdir(parents=True, exist_ok=True)
            _move_aside(path / name, replaced / name)
        os.replace(staging / name, path / name)
    _fsync_dir(path)
    journal_path.unlink()
    _fsync_dir(path)
    shutil.rmtree(staging, ignore_errors=True)


def _move_aside(entry: Path, destination: Path) -> None:
    if destination.exists():
        shutil.rmtree(destination) if destination.is_dir() else destination.unlink()
    os.replace(entry, destination)


def _remove_stale_staging(path: Path) -> None:
    """Remove the staging folders and half-written journals of saves whose process is gone (killed before their
    commit)."""
    for entry in orphaned_staging(path, _STAGING_PREFIX):
        shutil.rmtree(entry, ignore_errors=True)
    for entry in path.glob(f".{_JOURNAL}.*.tmp"):  # atomic_path's temporary file: .{name}.{pid}.tmp
        pid = entry.name[len(_JOURNAL) + 2 : -len(".tmp")]
        if pid.isdigit() and not process_alive(int(pid)):
            entry.unlink(missing_ok=True)


def orphaned_staging(folder: Path, prefix: str) -> list[Path]:
    """The folders ``{prefix}{pid}-...`` in ``folder`` whose process ``pid`` is gone (left by a killed write)."""
    orphans = []
    for entry in folder.glob(f"{prefix}*"):
        pid = entry.name[len(prefix) :].split("-", 1)[0]
        if entry.is_dir() and pid.isdigit() and not process_alive(int(pid)):
            orphans.append(entry)
    return orphans


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (this one always does)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def _folder_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on the folder itself (no lock file); a no-op where ``fcntl`` does not exist."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for entry in root.rglob("*"):
        if entry.is_file():
            with open(entry, "rb") as f:
                os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(folder: Path, expected: dict[str, str]) -> None:
    """A :class:`CheckpointError` naming the first file of ``folder`` whose SHA-256 is not the recorded one."""
    if not isinstance(expected, dict):
        raise CheckpointError(f"{folder}: the recorded checksums are not a mapping of file names")
    for name, digest in expected.items():
        if (folder / name).is_file() and file_sha256(folder / name) != digest:
            raise CheckpointError(
                f"{folder / name} does not match the checksum recorded when it was saved: the file is corrupt or "
                "was changed (restore it, or save the agent again)"
            )


def check_finite(tensors: dict[str, Any], path: Path) -> None:
    """A :class:`CheckpointError` naming the first floating-point tensor with a NaN or an infinity."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            raise CheckpointError(f"{path}: the weights {name!r} hold NaN or infinite values")


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp_path)`` and move the result onto ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        write(tmp)


def write_json_atomic(path: str | os.PathLike[str], value: Any, indent: int | None = 1) -> None:
    """Write ``value`` as JSON (UTF-8) to ``path`` atomically."""
    text = json.dumps(value, indent=indent)
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def make_progress(
    *extra_columns: ProgressColumn,
    show: bool = True,
    console: Console | None = None,
    transient: bool = False,
) -> Progress:
    """A Rich progress bar: ``description | bar | done/total | extra columns | elapsed``; disabled unless ``show``.

    Use a task's ``description`` for its name and task fields for what the extra columns print, e.g.
    ``make_progress(TextColumn("loss {task.fields[loss]:.3f}"), show=verbose)``.
    """
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra_columns,
        TimeElapsedColumn(),
        console=console,
        disable=not show,
        transient=transient,
    )


def optimizer_state_to_flat(state: Mapping[str, Any], prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer ``state_dict`` as tensors named ``{prefix}.{index}.{key}`` (for a safetensors file) plus the
    JSON-friendly rest: its ``param_groups`` and, under ``scalars``, any per-parameter entry that is not a tensor."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.{index}.{key}"] = value.contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_state_from_flat(tensors: Mapping[str, torch.Tensor], rest: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`optimizer_state_to_flat`, from its tensors named ``{index}.{key}`` (the prefix
    removed) and its rest read back from JSON (lists other than ``params`` become tuples again, e.g. ``betas``)."""
    state: dict[int, dict[str, Any]] = {int(i): dict(v) for i, v in rest.get("scalars", {}).items()}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    groups = [
        {key: tuple(value) if isinstance(value, list) and key != "params" else value for key, value in group.items()}
        for group in rest["param_groups"]
    ]
    return {"state": state, "param_groups": groups}
