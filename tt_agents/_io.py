"""The one atomic-write helper and the one progress-bar factory every module uses.

Atomic writes go to a temporary file in the destination's own folder, are flushed to disk, then renamed over the
destination (``os.replace``), so a reader sees either the old file or the new one, never half of one; a failed
write leaves the destination untouched and removes its temporary file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn


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
