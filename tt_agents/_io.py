"""The one atomic-write helper and the one progress-bar factory every module uses.

Atomic writes go to a temporary file in the destination's own folder, are flushed to disk, then renamed over the
destination (``os.replace``), so a reader sees either the old file or the new one, never half of one; a failed
write leaves the destination untouched and removes its temporary file.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


@contextmanager
def atomic_directory(path: str | os.PathLike[str], own_names: Collection[str]) -> Iterator[Path]:
    """Yield an empty folder next to ``path`` to write a set of files into; when the block ends without error,
    they replace ``path``'s files of the same set (``own_names``) all at once.

    The new folder is swapped in with two renames, so readers see the old set or the new one, never a mix.
    Other entries already in ``path`` (e.g. training checkpoints) are carried over into the new folder; if
    anything fails, they are moved back and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    carried: list[str] = []
    try:
        yield tmp
        for entry in tmp.rglob("*"):
            if entry.is_file():
                with open(entry, "rb") as f:
                    os.fsync(f.fileno())
        if path.exists():
            for entry in path.iterdir():
                if entry.name not in own_names:
                    os.replace(entry, tmp / entry.name)
                    carried.append(entry.name)
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        if old.exists() and not path.exists():
            os.replace(old, path)
        for name in carried:
            if (tmp / name).exists():
                os.replace(tmp / name, path / name)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


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
