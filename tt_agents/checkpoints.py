"""The TT agent's checkpoint folder: ``config.json`` (all configs, layout, spaces, dataset info, package version),
``tokenizer.json`` (bin edges), ``model.safetensors`` and, where trained with the agent, the IQL Q-function.

Written all at once with :func:`tt_agents._io.atomic_directory`; read back with clear errors
(:class:`~tt_agents._io.CheckpointError`) for a missing, corrupt or mismatched file. Nothing is unpickled.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from gymnasium import spaces

from ._io import CheckpointError, atomic_directory, check_finite, file_sha256, reading_directory, verify_sha256
from ._version import __version__
from .baselines import IQLAgent
from .config import AgentConfig
from .layout import TransitionLayout
from .model import TrajectoryGPT
from .spaces import space_from_dict, space_to_dict
from .tokenizer import Tokenizer

CHECKPOINT_FORMAT_VERSION = 1
CONFIG_FILE, TOKENIZER_FILE, MODEL_FILE = "config.json", "tokenizer.json", "model.safetensors"
Q_FUNCTION_DIR = "q_function"
LEGACY_Q_FUNCTION_FILE = "q_function.pt"  # the IQL agent as one file, written by earlier versions
OWN_FILES = (CONFIG_FILE, TOKENIZER_FILE, MODEL_FILE, Q_FUNCTION_DIR, LEGACY_Q_FUNCTION_FILE)


@dataclass
class AgentCheckpoint:
    """Everything a TT agent needs to act, as read from (or to be written to) a checkpoint folder."""

    config: AgentConfig
    layout: TransitionLayout
    observation_space: spaces.Space
    action_space: spaces.Space
    tokenizer: Tokenizer
    model_state: dict[str, torch.Tensor]
    dataset_info: dict[str, Any]
    iql: IQLAgent | None = None


def write_checkpoint(path: str | os.PathLike[str], checkpoint: AgentCheckpoint) -> Path:
    """Write ``checkpoint`` into folder ``path`` atomically; other files already in ``path`` are kept."""
    path = Path(path)
    meta: dict[str, Any] = {
        "format": "tt-agents",
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "tt_agents_version": __version__,
        "layout": checkpoint.layout.to_dict(),
        "n_bins": checkpoint.tokenizer.n_bins,
        "config": checkpoint.config.to_dict(),
        "observation_space": space_to_dict(checkpoint.observation_space),
        "action_space": space_to_dict(checkpoint.action_space),
        "dataset": checkpoint.dataset_info,
    }
    with atomic_directory(path, OWN_FILES) as tmp:
        if checkpoint.iql is not None:
            meta["q_function"] = "iql"
            checkpoint.iql.save_pretrained(tmp / Q_FUNCTION_DIR)
        checkpoint.tokenizer.save(tmp / TOKENIZER_FILE)
        state = {k: v.detach().cpu().contiguous() for k, v in checkpoint.model_state.items()}
        safetensors.torch.save_file(state, tmp / MODEL_FILE, metadata={"tt_agents_version": __version__})
        meta["sha256"] = {name: file_sha256(tmp / name) for name in (TOKENIZER_FILE, MODEL_FILE)}
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
    return path


def read_checkpoint(path: str | os.PathLike[str], device: torch.device, with_iql: bool = True) -> AgentCheckpoint:
    """Read the folder ``path`` written by :func:`write_checkpoint` (the IQL Q-function too when ``with_iql``)."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no checkpoint directory at {path}")
    with reading_directory(path):
        return _read_folder(path, device, with_iql)


def _read_folder(path: Path, device: torch.device, with_iql: bool) -> AgentCheckpoint:
    _refuse_a_baseline(path)
    for name in (CONFIG_FILE, TOKENIZER_FILE, MODEL_FILE):
        if not (path / name).is_file():
            raise FileNotFoundError(f"checkpoint {path} is missing {name}")
    meta, config, observation_space, action_space, layout = _read_config(path / CONFIG_FILE)
    tokenizer = Tokenizer.load(path / TOKENIZER_FILE)
    try:
        state = safetensors.torch.load_file(path / MODEL_FILE, device="cpu")
    except Exception as exc:
        raise CheckpointError(f"{path / MODEL_FILE} cannot be read (truncated or corrupt?): {exc}") from exc
    verify_sha256(path, meta.get("sha256", {}))  # checkpoints of earlier versions carry no checksums
    check_finite(state, path / MODEL_FILE)
    iql = _read_iql(path, device) if with_iql and meta.get("q_function") == "iql" else None
    return AgentCheckpoint(
        config, layout, observation_space, action_space, tokenizer, state, meta.get("dataset", {}), iql
    )


def _refuse_a_baseline(path: Path) -> None:
    """A clear error for a baseline's checkpoint (BC, IQL: its ``config.json`` names its ``kind``, and it has no
    tokenizer) given to the TT agent."""
    if (path / TOKENIZER_FILE).exists() or not (path / CONFIG_FILE).is_file():
        return
    try:
        kind = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8")).get("kind")
    except (ValueError, AttributeError, OSError):
        return  # not a baseline's: the checks that follow say what is wrong
    if isinstance(kind, str):
        raise CheckpointError(
            f"{path} holds a {kind} checkpoint, not a TrajectoryTransformerAgent's: load it with "
            f"{kind}.from_pretrained (tt_agents.baselines)"
        )


def load_model(checkpoint: AgentCheckpoint, path: str | os.PathLike[str]) -> TrajectoryGPT:
    """The network of ``checkpoint`` (read from folder ``path``, named in errors), on the CPU, in eval mode."""
    tokenizer = checkpoint.tokenizer
    model = TrajectoryGPT(checkpoint.layout, tokenizer.n_bins, checkpoint.config.model, tokenizer.categorical_columns)
    try:
        model.load_state_dict(checkpoint.model_state)
    except RuntimeError as exc:
        raise CheckpointError(f"{Path(path) / MODEL_FILE} does not match the model in {CONFIG_FILE}: {exc}") from exc
    return model.eval()


def _read_config(
    path: Path,
) -> tuple[dict[str, Any], AgentConfig, spaces.Space, spaces.Space, TransitionLayout]:
    try:
        meta = json.loads(path.read_text())
        if meta.get("format") != "tt-agents":
            raise CheckpointError(f"{path} is not a tt-agents checkpoint config")
        if meta.get("format_version") != CHECKPOINT_FORMAT_VERSION:
            raise CheckpointError(
                f"{path} has checkpoint format {meta.get('format_version')}, this tt_agents "
                f"{__version__} reads format {CHECKPOINT_FORMAT_VERSION}"
            )
        config = AgentConfig.from_dict(meta["config"])
        observation_space = space_from_dict(meta["observation_space"])
        action_space = space_from_dict(meta["action_space"])
        layout = TransitionLayout.from_dict(meta["layout"])
    except CheckpointError:
        raise
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} is corrupt or incomplete: {exc}") from exc
    return meta, config, observation_space, action_space, layout


def _read_iql(path: Path, device: torch.device) -> IQLAgent:
    q_path = path / Q_FUNCTION_DIR
    if not q_path.exists():
        q_path = path / LEGACY_Q_FUNCTION_FILE
    if not q_path.exists():
        raise FileNotFoundError(f"checkpoint {path} is missing {Q_FUNCTION_DIR}")
    return IQLAgent.from_pretrained(q_path, device=device)
