"""Minari datasets: loading one by id (locally, else downloaded, else a clear error) and reading its episodes.

Only flat continuous (1-D ``Box``) action spaces and flat observations, or Dict observations of flat parts,
are read; anything else is rejected before any episode is.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..spaces import (
    check_action_space,
    check_flat_box,
    check_observation_space,
    dict_entry,
    dict_key_name,
    has_dict_entry,
    space_categories,
)
from .episodes import ObservationKey

if TYPE_CHECKING:
    import minari

_HOW_TO_MAKE = (
    "Make one locally with `tt-agents make-dataset ENV LEVEL` or `tt_agents.data_making.record_dataset(...)`."
)


class DatasetNotAvailableError(FileNotFoundError):
    """A Minari dataset id that is neither stored locally nor downloadable."""


def _truthy_env(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _download_blocker() -> str | None:
    """Why a Minari download cannot work here (checked up front: offline downloads hang in retries)."""
    remote = os.environ.get("MINARI_REMOTE", "hf://farama-minari")
    if remote.startswith("hf://"):
        if importlib.util.find_spec("huggingface_hub") is None:
            return "huggingface_hub is not installed (pip install 'minari[hf]')"
        if _truthy_env("HF_HUB_OFFLINE"):
            return "HF_HUB_OFFLINE is set, so downloads from the Hugging Face Hub are disabled"
        return _unreachable(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    return None


def _unreachable(url: str, timeout: float = 3.0) -> str | None:
    """Why ``url``'s host cannot be reached (one TCP connection, ``timeout`` seconds), or None when it can."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or url, parts.port or (80 if parts.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return f"{host} cannot be reached ({type(exc).__name__}: {exc}); is this machine offline?"
    return None


def load_minari_dataset(dataset_id: str) -> minari.MinariDataset:
    """The local Minari dataset ``dataset_id``, downloading it if possible; else DatasetNotAvailableError."""
    import minari
    from minari.storage import get_dataset_path

    problem = _id_form_problem(dataset_id)
    if problem is not None:
        raise ValueError(
            f"{dataset_id!r} is not a Minari dataset id: {problem}; ids are (namespace/)name-vN, e.g. "
            f"'mujoco/hopper/medium-v0'.{_similar_local_ids(dataset_id)}"
        )
    try:
        return minari.load_dataset(dataset_id)
    except FileNotFoundError:
        pass
    reason = _download_blocker()
    if reason is None:
        try:
            return minari.load_dataset(dataset_id, download=True)
        except Exception as exc:  # any failure (network, not found, missing extra) gets the one message below
            first_line = (str(exc).strip().splitlines() or [""])[0]
            reason = f"{type(exc).__name__}: {first_line}"
    raise DatasetNotAvailableError(
        f"Minari dataset {dataset_id!r} is not available locally and could not be downloaded ({reason}).\n"
        f"Local datasets are looked for in {get_dataset_path()} (set MINARI_DATASETS_PATH to change it; "
        "Minari's default is ~/.minari/datasets).\n" + _HOW_TO_MAKE + _similar_local_ids(dataset_id)
    ) from None


def _id_form_problem(dataset_id: str) -> str | None:
    """What is wrong with the form of ``dataset_id`` (Minari's own id pattern), or None when it is well formed."""
    from minari.dataset.minari_dataset import DATASET_ID_RE

    if dataset_id != dataset_id.strip():
        return "it has leading or trailing spaces"
    match = DATASET_ID_RE.fullmatch(dataset_id)
    if match is None:
        return "it is not of that form"
    if match.group("version") is None:
        return "it has no -vN version"
    return None


def _similar_local_ids(dataset_id: str) -> str:
    """A sentence naming the locally stored ids most like ``dataset_id`` (empty when none is close)."""
    import difflib

    import minari

    try:
        local = sorted(minari.list_local_datasets())
    except Exception:  # a broken local store must not hide the error being reported
        return ""
    close = difflib.get_close_matches(dataset_id.strip(), local, n=3, cutoff=0.6)
    return f"\nStored locally and similar: {', '.join(close)}." if close else ""


def reference_scores_of(metadata: Mapping[str, Any]) -> tuple[float, float] | None:
    """The finite ``(ref_min_score, ref_max_score)`` of a Minari dataset's metadata (or of an agent's dataset
    info), or None where either is missing or not finite."""
    low, high = metadata.get("ref_min_score"), metadata.get("ref_max_score")
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return None
    return float(low), float(high)


def _check_minari_spaces(dataset: minari.MinariDataset, observation_key: ObservationKey) -> None:
    from gymnasium import spaces

    action_space = dataset.action_space
    try:
        check_action_space(action_space)
    except TypeError as exc:
        raise ValueError(
            f"dataset {dataset.id!r} has action space {action_space}; tt_agents supports flat continuous "
            f"(1-D Box), Discrete, and 1-D MultiDiscrete and MultiBinary action spaces ({exc})"
        ) from None
    observation_space = dataset.observation_space
    parts = [observation_space]
    composite = isinstance(observation_space, spaces.Dict | spaces.Tuple)
    if isinstance(observation_space, spaces.Tuple) and isinstance(observation_key, str | None):
        raise ValueError(
            f"dataset {dataset.id!r} has Tuple observations {observation_space}: read it with an agent made for that "
            "space (the Trajectory Transformer's TTAgent takes Tuples of Boxes and categorical spaces)"
        )
    if composite:
        keys = (observation_key or "observation",) if isinstance(observation_key, str | None) else observation_key
        missing = [dict_key_name(key) for key in keys if not has_dict_entry(observation_space, key)]
        if missing:
            entries = observation_space.spaces
            available = sorted(entries) if isinstance(observation_space, spaces.Dict) else list(range(len(entries)))
            raise ValueError(
                f"dataset {dataset.id!r} has Dict observations without key(s) {missing}; available keys: "
                f"{available} (pass observation_key=...)"
            )
        parts = [dict_entry(observation_space, key) for key in keys]
    try:
        if composite:
            for part in parts:
                if space_categories(part, "observation_space") is None:
                    check_flat_box(part, "observation_space")
        else:
            check_observation_space(observation_space)
    except TypeError as exc:
        raise ValueError(
            f"dataset {dataset.id!r} has observation space {observation_space}; tt_agents needs flat (1-D Box), "
            "Discrete, 1-D MultiDiscrete or MultiBinary observations, or Dicts (or Tuples) of them (flatten others, "
            f"e.g. with gymnasium.wrappers.FlattenObservation, before recording) ({exc})"
        ) from None


def minari_episode_dicts(dataset: minari.MinariDataset, observation_key: ObservationKey) -> Iterator[dict[str, Any]]:
    """The episodes of ``dataset`` as episode dicts, after checking its spaces (a ValueError if unsupported)."""
    _check_minari_spaces(dataset, observation_key)
    return (
        {
            "observations": ep.observations,
            "actions": ep.actions,
            "rewards": ep.rewards,
            "terminations": ep.terminations,
        }
        for ep in dataset.iterate_episodes()
    )
