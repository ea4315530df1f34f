"""Checkpoints of the baseline agents: a folder holding ``config.json`` and ``model.safetensors``.

An agent describes itself as a *state*: a dict of JSON values (kind, spaces, settings, ...) plus ``modules``
(name -> ``state_dict``), ``optimizers`` (name -> optimizer ``state_dict``) and optionally ``tensors`` (name ->
tensor, e.g. a random generator's state). :func:`write_checkpoint` puts every tensor in ``model.safetensors``
and everything else in ``config.json``, so :func:`read_checkpoint` unpickles nothing.

:func:`read_checkpoint` also reads the legacy format: a single file holding the whole state as one
``torch.save`` (formats ``tt_agents.baselines/1`` and ``/2``), loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from gymnasium import spaces

from .._io import (
    CheckpointError,
    atomic_directory,
    check_finite,
    file_sha256,
    optimizer_state_from_flat,
    optimizer_state_to_flat,
    reading_directory,
    verify_sha256,
)
from .._version import __version__
from ..spaces import space_to_dict

FORMAT = "tt_agents.baselines"
FORMAT_VERSION = 3  # 1 and 2 are the legacy single files
CONFIG_FILE, MODEL_FILE = "config.json", "model.safetensors"
_FORMAT = "tt_agents.baselines/2"  # legacy single file: spaces as JSON-friendly dicts (Dict spaces too)
_FORMAT_V1 = "tt_agents.baselines/1"  # legacy single file: Box spaces as low/high tensors
_TENSOR_GROUPS = ("modules", "optimizers", "tensors")
_FORMAT_KEYS = ("format", "format_version", "tt_agents_version")


def write_checkpoint(path: str | os.PathLike[str], state: Mapping[str, Any], *, replace_file: bool = False) -> Path:
    """Write ``state`` as a checkpoint folder at ``path`` (see the module docstring); returns ``path``.

    The files are staged inside ``path`` and committed through a journal (:func:`tt_agents._io.atomic_directory`), so an
    interrupted write never leaves a mix of old and new files; other files already in ``path`` are kept. A file at
    ``path`` is an error unless ``replace_file`` (a legacy single-file checkpoint being rewritten as a folder): it is
    moved aside while the folder is written, and put back if that fails.
    """
    path = Path(path)
    config, tensors = _split(state)
    json.dumps(config)  # a state that is not JSON fails before anything is touched
    aside = None
    if path.is_file():
        if not replace_file:
            raise FileExistsError(f"{path} is a file, not a checkpoint folder")
        aside = path.with_name(f".{path.name}.legacy-{os.getpid()}")
        os.replace(path, aside)
    try:
        with atomic_directory(path, (CONFIG_FILE, MODEL_FILE)) as tmp:
            safetensors.torch.save_file(tensors, tmp / MODEL_FILE, metadata={"tt_agents_version": __version__})
            text = json.dumps({**config, "sha256": {MODEL_FILE: file_sha256(tmp / MODEL_FILE)}}, indent=2)
            (tmp / CONFIG_FILE).write_text(text, encoding="utf-8")
    except BaseException:
        if aside is not None:
            os.replace(aside, path)
        raise
    if aside is not None:
        aside.unlink()
    return path


def read_checkpoint(path: str | os.PathLike[str], kind: str) -> dict[str, Any]:
    """The state saved at ``path``: a checkpoint folder, or a legacy single file.

    Raises:
        FileNotFoundError: nothing at ``path``, or a folder missing one of its files.
        ValueError: a corrupt or foreign file, or a checkpoint of another kind of agent than ``kind``.
    """
    path = Path(path)
    if path.is_dir():
        with reading_directory(path):
            state = _read_folder(path)
    elif path.is_file():
        state = _read_legacy_file(path)
    else:
        raise FileNotFoundError(f"no baseline checkpoint at {path}")
    if state.get("kind") != kind:
        raise CheckpointError(f"{path} holds a {state.get('kind')}, not a {kind}")
    return state


# ---------------------------------------------------------------------------------------------- the folder


def _split(state: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``state`` as (``config.json`` content, ``model.safetensors`` content)."""
    config: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION, "tt_agents_version": __version__}
    config.update({key: value for key, value in state.items() if key not in _TENSOR_GROUPS})
    config["modules"] = sorted(state["modules"])
    config["optimizers"] = {}
    tensors: dict[str, Any] = {}
    for name, module_state in state["modules"].items():
        tensors.update({f"modules.{name}.{key}": value for key, value in module_state.items()})
    for name, optimizer_state in state["optimizers"].items():
        optimizer_tensors, config["optimizers"][name] = optimizer_state_to_flat(optimizer_state, f"optimizers.{name}")
        tensors.update(optimizer_tensors)
    tensors.update({f"tensors.{name}": value for name, value in state.get("tensors", {}).items()})
    for key, value in tensors.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"checkpoint entry {key} is a {type(value).__name__}, not a tensor")
    # clone: modules share their normalizer, and safetensors stores no shared memory
    return config, {key: value.detach().cpu().clone().contiguous() for key, value in tensors.items()}


def _join(config: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The inverse of :func:`_split`."""
    state = {key: value for key, value in config.items() if key not in _FORMAT_KEYS}
    state["modules"] = {name: {} for name in config["modules"]}
    optimizer_tensors: dict[str, dict[str, torch.Tensor]] = {name: {} for name in config["optimizers"]}
    state["tensors"] = {}
    for key, value in tensors.items():
        group, rest = key.split(".", 1)
        if group == "modules":
            name, parameter = rest.split(".", 1)
            state["modules"][name][parameter] = value
        elif group == "optimizers":
            name, entry = rest.split(".", 1)
            optimizer_tensors[name][entry] = value
        elif group == "tensors":
            state["tensors"][rest] = value
        else:
            raise KeyError(f"unexpected tensor {key!r}")
    state["optimizers"] = {
        name: optimizer_state_from_flat(optimizer_tensors[name], saved) for name, saved in config["optimizers"].items()
    }
    return state


def _read_folder(path: Path) -> dict[str, Any]:
    for name in (CONFIG_FILE, MODEL_FILE):
        if not (path / name).is_file():
            raise FileNotFoundError(f"checkpoint {path} is missing {name}")
    try:
        config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path / CONFIG_FILE} is corrupt: {exc}") from exc
    found = config.get("format") if isinstance(config, dict) else None
    if found != FORMAT:
        hint = (
            ": it is a TrajectoryTransformerAgent's (load it with TTAgent.from_pretrained)"
            if found == "tt-agents"
            else ""
        )
        raise CheckpointError(f"{path / CONFIG_FILE} is not a baseline checkpoint config{hint}")
    if config.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path / CONFIG_FILE} has checkpoint format {config.get('format_version')}, this tt_agents "
            f"{__version__} reads format {FORMAT_VERSION} (and the legacy single files)"
        )
    try:
        tensors = safetensors.torch.load_file(path / MODEL_FILE, device="cpu")
    except Exception as exc:
        raise CheckpointError(f"{path / MODEL_FILE} cannot be read (truncated or corrupt?): {exc}") from exc
    verify_sha256(path, config.pop("sha256", {}))  # folders of earlier versions carry no checksums
    check_finite(tensors, path / MODEL_FILE)
    try:
        return _join(config, tensors)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} is corrupt or incomplete: {type(exc).__name__}: {exc}") from exc


# ---------------------------------------------------------------------------------------------- the legacy file


def _read_legacy_file(path: Path) -> dict[str, Any]:
    """The state in a legacy single-file checkpoint (formats ``/1`` and ``/2``), read with ``weights_only``."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"{path} is not a readable tt_agents baseline checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(data, dict) or data.get("format") not in (_FORMAT, _FORMAT_V1):
        raise CheckpointError(
            f"{path} is not a tt_agents baseline checkpoint (a folder, or a single file of format {_FORMAT!r} or "
            f"{_FORMAT_V1!r})"
        )
    if data["format"] == _FORMAT_V1:
        data = _upgrade_v1(data)
    state = {key: value for key, value in data.items() if key not in ("format", "policy", "optimizer")}
    if "policy" in data:  # behaviour cloning kept its one network and optimizer at the top level
        state["modules"] = {"policy": data["policy"]}
        state["optimizers"] = {"policy": data["optimizer"]}
    progress = data.get("fit_progress")
    if progress is not None:  # IQL's resumable run kept its batch generator's state inside
        state["fit_progress"] = {key: value for key, value in progress.items() if key != "generator"}
        state["tensors"] = {"fit_generator": progress["generator"]}
    return state


def _upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A format-1 checkpoint (Box spaces as ``low``/``high`` tensors; GoalBCAgent's Dict as
    ``observation_spaces``) in the format-2 form."""

    def box(old: Mapping[str, Any]) -> dict[str, Any]:
        return space_to_dict(spaces.Box(old["low"].numpy(), old["high"].numpy(), dtype=np.dtype(old["dtype"])))

    data = dict(data)
    if "observation_spaces" in data:
        parts = data.pop("observation_spaces")
        data["observation_space"] = {"type": "Dict", "spaces": {k: box(v) for k, v in parts.items()}}
    else:
        data["observation_space"] = box(data["observation_space"])
    data["action_space"] = box(data["action_space"])
    return data
