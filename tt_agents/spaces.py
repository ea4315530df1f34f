"""Spaces: which observation and action spaces tt_agents accepts, flat rows from Dict observations, devices,
and the JSON form of spaces kept in checkpoints.

Observations are flat ``Box`` es, or ``Dict`` s of flat Boxes (goal environments such as gymnasium-robotics'
mazes), Dicts nested in them included (FrankaKitchen's goals). Outside goal mode a Dict observation is used whole:
its entries are concatenated in the space's key order, depth first, exactly as ``gymnasium.spaces.flatten`` and
``gymnasium.wrappers.FlattenObservation`` do, so an agent trained on Dict data also acts on a flattened
environment. Outside goal mode the Trajectory Transformer also takes ``Tuple`` s (Blackjack's), and Dict or Tuple
entries that are categorical (``Discrete``, 1-D ``MultiDiscrete`` or ``MultiBinary``): each categorical entry is one
column per category variable (not one-hot, as ``gymnasium.spaces.flatten`` would make it), so such an agent acts on
the Dict or Tuple observations themselves.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from gymnasium import spaces


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` picks CUDA when available, else CPU; anything else is passed to ``torch.device`` and must be a
    CPU or CUDA device that exists on this machine (a ValueError says why not)."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str | torch.device):
        raise TypeError(f"device must be a string such as 'auto', 'cpu' or 'cuda', got {type(device).__name__}")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device {device!r} is not a torch device ('auto', 'cpu', 'cuda', 'cuda:1', ...)") from exc
    if resolved.type not in ("cpu", "cuda"):  # e.g. MPS, which has no float64 for the tokenizer's bin tables
        raise ValueError(f"device {device!r}: tt_agents runs on 'cpu' and 'cuda' devices only")
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {device!r}: this machine has no usable CUDA device (use 'auto' or 'cpu')")
        if resolved.index is not None and resolved.index >= count:
            raise ValueError(f"device {device!r}: this machine has {count} CUDA device(s)")
    return resolved


def device_memory(device: torch.device) -> int | None:
    """Total memory of ``device`` in bytes (the machine's RAM for the CPU); None when unknown."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


COMPOSITE_SPACES = (spaces.Tuple, spaces.MultiDiscrete, spaces.MultiBinary)
"""Spaces that flatten into a Box: a Tuple, MultiDiscrete and MultiBinary (taken by the Trajectory Transformer as
they are, by the baselines' networks only flattened)."""


def _flatten_hint(space: spaces.Space, name: str) -> str:
    """What to do about a composite ``space`` or a Box of several axes (empty for any other): a flattened
    observation space is a Box this package takes; a composite action space has no such wrapper."""
    if isinstance(space, spaces.Box) and len(space.shape) > 1:
        values = int(np.prod(space.shape))
        if name.startswith("observation_space"):
            return (
                f"; flatten it (gymnasium.wrappers.FlattenObservation(env), and reshape a dataset's observations to "
                f"(T, {values})): each of its {values} values then becomes one token per step"
            )
        return f"; flatten it into a Box of shape ({values},) (an ActionWrapper, and the dataset's actions alike)"
    if not isinstance(space, COMPOSITE_SPACES):
        return ""
    if name.startswith("observation_space"):
        return (
            "; flatten it: gymnasium.wrappers.FlattenObservation(env) gives a flat (one-hot) Box, and "
            "gymnasium.spaces.flatten(space, x) flattens a dataset's observations the same way"
        )
    return "; a composite action space is not supported: map its combinations onto one Discrete (an ActionWrapper)"


def check_flat_box(space: spaces.Space, name: str) -> int:
    """The size of ``space``, a 1-D ``Box``; a TypeError naming ``name`` otherwise."""
    if not isinstance(space, spaces.Box) or len(space.shape) != 1:
        raise TypeError(f"{name} must be a flat (1-D) gymnasium Box, got {space!r}{_flatten_hint(space, name)}")
    return int(space.shape[0])


def check_action_space(space: spaces.Space) -> int:
    """The size of an action space: a flat (1-D) ``Box``, a ``Discrete(n)`` (one action dimension holding the
    integers ``0 .. n - 1``), or a 1-D ``MultiDiscrete`` / ``MultiBinary`` (one dimension per entry, each holding
    its categories); a TypeError otherwise."""
    return _flat_space_size(space, "action_space")


def check_observation_space(space: spaces.Space) -> int:
    """The size of an observation space that is not a Dict: as :func:`check_action_space` allows."""
    return _flat_space_size(space, "observation_space")


MULTI_CATEGORICAL_SPACES = (spaces.MultiDiscrete, spaces.MultiBinary)
"""Spaces of several categorical dimensions, taken as they are by the Trajectory Transformer (a token each)."""


def _flat_space_size(space: spaces.Space, name: str) -> int:
    categories = space_categories(space, name)
    if categories is not None:
        return len(categories)
    if not isinstance(space, spaces.Box) or len(space.shape) != 1:
        hint = _flatten_hint(space, name)
        raise TypeError(
            f"{name} must be a flat (1-D) gymnasium Box, a Discrete, or a 1-D MultiDiscrete or MultiBinary, "
            f"got {space!r}{hint}"
        )
    return int(space.shape[0])


def space_categories(space: spaces.Space, name: str = "space") -> tuple[int, ...] | None:
    """The number of categories of each dimension of a categorical space: ``(n,)`` for ``Discrete(n)``, ``nvec``
    for a 1-D ``MultiDiscrete``, 2 per entry of a 1-D ``MultiBinary``; None for any other space. A TypeError
    naming ``name`` for a categorical space whose categories do not start at 0 or that has several axes."""
    if isinstance(space, spaces.Discrete):
        if int(space.start) != 0:
            raise TypeError(f"{name} {space!r}: Discrete spaces must start at 0")
        return (int(space.n),)
    if not isinstance(space, MULTI_CATEGORICAL_SPACES):
        return None
    if len(space.shape) != 1:
        raise TypeError(
            f"{name} {space!r} has several axes: flatten it into a 1-D {type(space).__name__} (one token per entry)"
        )
    if isinstance(space, spaces.MultiBinary):
        return (2,) * int(space.shape[0])
    if np.any(space.start != 0):
        raise TypeError(f"{name} {space!r}: MultiDiscrete spaces must start at 0")
    return tuple(int(n) for n in space.nvec)


def are_categories(values: np.ndarray, n: int) -> bool:
    """Whether ``values`` (any shape) are all among the integers ``0 .. n - 1``."""
    return bool(np.all(values == np.rint(values)) and values.min() >= 0 and values.max() < n)


def discrete_rows(observation: Any, space: spaces.Discrete) -> tuple[np.ndarray, bool]:
    """A ``Discrete`` space's observation as (n, 1) float64 rows: one category (a scalar) or a batch of them
    ``(n,)`` (or ``(n, 1)``); also whether it was a single one. A ValueError unless they are the space's categories."""
    if isinstance(observation, Mapping):
        raise TypeError(f"observation: expected the categories of {space!r}, got a dict")
    array = np.asarray(observation)
    if array.dtype.kind not in "biuf" or array.ndim > 2 or (array.ndim == 2 and array.shape[1] != 1):
        raise ValueError(f"observation: expected a category of {space!r} or a batch (n_envs,), got {array!r}")
    if array.size == 0:
        raise ValueError("observation: an empty batch; give at least one category")
    n = int(space.n)
    if not (np.isfinite(array).all() and are_categories(array, n)):
        raise ValueError(f"observation: expected the categories 0 .. {n - 1} of {space!r}, got {array.tolist()}")
    return array.astype(np.float64).reshape(-1, 1), array.ndim == 0


def check_discrete_actions(actions: np.ndarray, space: spaces.Discrete) -> None:
    """A ValueError unless ``actions`` (any shape) are the categories ``0 .. n - 1`` of the Discrete ``space``."""
    n = int(space.n)
    if not are_categories(actions, n):
        raise ValueError(
            f"the data's actions must be the categories 0 .. {n - 1} of {space!r}, got values in "
            f"[{actions.min():g}, {actions.max():g}]"
        )


def categorical_rows(
    values: Any, space: spaces.MultiDiscrete | spaces.MultiBinary, name: str
) -> tuple[np.ndarray, bool]:
    """A 1-D MultiDiscrete or MultiBinary space's value ``(D,)`` or batch ``(n, D)`` as (n, D) float64 rows, and
    whether it was a single one; a ValueError unless every entry is among its dimension's categories."""
    categories = space_categories(space, name)
    if isinstance(values, Mapping):
        raise TypeError(f"{name}: expected the categories of {space!r}, got a dict")
    array = np.asarray(values)
    dim = len(categories)
    if array.dtype.kind not in "biuf" or array.ndim not in (1, 2) or array.shape[-1] != dim or array.size == 0:
        raise ValueError(
            f"{name}: expected the categories of {space!r}, shape ({dim},) or (n_envs, {dim}), got {array!r}"
        )
    rows = array.reshape(-1, dim)
    check_category_columns(rows, categories, f"{name} of {space!r}")
    return rows.astype(np.float64), array.ndim == 1


def check_category_columns(rows: np.ndarray, categories: tuple[int | None, ...], name: str) -> None:
    """A ValueError naming ``name`` unless column ``i`` of ``rows`` (n, D) holds only the integers
    ``0 .. categories[i] - 1`` (a column whose ``categories[i]`` is None is continuous and not checked)."""
    for column, n in enumerate(categories):
        if n is None:
            continue
        values = rows[:, column]
        if not np.isfinite(values).all():
            raise ValueError(f"{name}: entry {column} holds NaN or inf where the categories 0 .. {n - 1} belong")
        if not are_categories(values, n):
            raise ValueError(
                f"{name}: entry {column} must be one of the categories 0 .. {n - 1}, got values in "
                f"[{values.min():g}, {values.max():g}]"
            )


def actions_in_space(actions: np.ndarray, space: spaces.Space) -> np.ndarray:
    """Planned actions (E, A) as ``space`` holds them, in its dtype: a Discrete's categories (E,) and a
    MultiDiscrete's or MultiBinary's (E, A), rounded (they decode exactly); a Box's clipped to its bounds."""
    if isinstance(space, spaces.Discrete):
        return np.rint(actions[:, 0]).astype(space.dtype)
    if isinstance(space, MULTI_CATEGORICAL_SPACES):
        return np.rint(actions).astype(space.dtype)
    return np.clip(actions, space.low, space.high).astype(space.dtype)


MAP_KEY = "map"
"""The Dict observation entry that holds a per-episode map of integer cells (``ModelConfig.map_shape``)."""


def map_shape(space: spaces.Space) -> tuple[int, int] | None:
    """``(H, W)`` of a Dict observation space's ``map`` entry (a 2-D Box of integers), or None without one (a
    flat ``map`` Box is an ordinary observation entry)."""
    if not isinstance(space, spaces.Dict) or MAP_KEY not in space.spaces:
        return None
    sub = space[MAP_KEY]
    if isinstance(sub, spaces.Box) and len(sub.shape) == 1:
        return None
    if not isinstance(sub, spaces.Box) or len(sub.shape) != 2 or not np.issubdtype(sub.dtype, np.integer):
        raise TypeError(f"observation_space[{MAP_KEY!r}] must be a 2-D Box of integer cells (a map), got {sub}")
    return (int(sub.shape[0]), int(sub.shape[1]))


def without_map(space: spaces.Space) -> spaces.Space:
    """A Dict observation space without its ``map`` entry (any other space, or one whose ``map`` is a flat
    entry, as it is)."""
    if map_shape(space) is None:
        return space
    return spaces.Dict({key: sub for key, sub in space.spaces.items() if key != MAP_KEY})


def map_rows(observation: Any, shape: tuple[int, int]) -> np.ndarray:
    """The ``map`` entry of one Dict observation ``(H, W)`` or a batch ``(n, H, W)``, as (n, H, W) int64."""
    if not isinstance(observation, Mapping) or MAP_KEY not in observation:
        raise ValueError(f"this agent reads a map: the observation needs a {MAP_KEY!r} entry of shape {shape}")
    grid = np.asarray(observation[MAP_KEY])
    grid = grid[None] if grid.ndim == 2 else grid
    if grid.ndim != 3 or grid.shape[1:] != shape or grid.dtype.kind not in "biu":
        raise ValueError(f"the {MAP_KEY!r} observation must be integer cells of shape {shape} (or (n, *{shape}))")
    return grid.astype(np.int64)


DictKey = str | int | tuple[str | int, ...]
"""An entry of a Dict or Tuple observation: its key (a Tuple's index), or for an entry nested in it the path of
keys (``("achieved_goal", "kettle")``)."""

COMPOSITE_OBSERVATIONS = (spaces.Dict, spaces.Tuple)
"""Observation spaces made of entries (:func:`dict_keys`)."""


def _path(key: DictKey) -> tuple[str | int, ...]:
    return key if isinstance(key, tuple) else (key,)


def dict_key_name(key: DictKey) -> str:
    """How errors name an entry: ``observation``, or a nested one's path ``achieved_goal/kettle``."""
    return "/".join(str(part) for part in _path(key))


def _entries(container: Any) -> Any:
    return container.spaces if isinstance(container, COMPOSITE_OBSERVATIONS) else container


def has_dict_entry(container: Any, key: DictKey) -> bool:
    """Whether a Dict or Tuple observation (or such a space) has the entry ``key``."""
    for part in _path(key):
        entries = _entries(container)
        if isinstance(entries, Mapping):
            found = part in entries
        else:
            found = isinstance(entries, tuple | list) and isinstance(part, int) and 0 <= part < len(entries)
        if not found:
            return False
        container = entries[part]
    return True


def dict_entry(container: Any, key: DictKey) -> Any:
    """The entry ``key`` of a Dict or Tuple observation (or such a space), walking down the path of a nested one."""
    for part in _path(key):
        container = _entries(container)[part]
    return container


def dict_keys(space: spaces.Dict | spaces.Tuple, categorical: bool = False) -> tuple[DictKey, ...]:
    """The entries of a Dict of flat Boxes, and of Dicts of them nested in it, in the space's order: the order of
    the flattened row, as ``gymnasium.spaces.flatten`` (and so ``FlattenObservation``) concatenates them. With
    ``categorical``, Tuples and categorical entries (``Discrete``, 1-D ``MultiDiscrete`` and ``MultiBinary``) are
    taken too; a TypeError naming the entry otherwise."""
    keys: list[DictKey] = []

    def visit(sub: spaces.Space, path: tuple[str | int, ...]) -> None:
        if isinstance(sub, spaces.Dict):
            for key, inner in sub.spaces.items():
                visit(inner, (*path, key))
        elif isinstance(sub, spaces.Tuple) and categorical:
            for index, inner in enumerate(sub.spaces):
                visit(inner, (*path, index))
        else:
            name = "observation_space" + "".join(f"[{part!r}]" for part in path)
            if not categorical and isinstance(sub, (spaces.Discrete, spaces.Tuple, *MULTI_CATEGORICAL_SPACES)):
                raise TypeError(
                    f"{name} is {sub!r}: this agent reads Dicts of flat Boxes only; flatten the observations "
                    "(gymnasium.wrappers.FlattenObservation(env) gives a flat, one-hot Box)"
                )
            if not (categorical and space_categories(sub, name) is not None):
                check_flat_box(sub, name)
            keys.append(path[0] if len(path) == 1 else path)

    visit(space, ())
    return tuple(keys)


def entry_categories(space: spaces.Dict | spaces.Tuple, keys: tuple[DictKey, ...]) -> tuple[int | None, ...]:
    """Per column of the flattened row of ``keys`` (see :func:`dict_keys`): the number of categories of a
    categorical entry's column, None for a Box's."""
    columns: list[int | None] = []
    for key in keys:
        entry = dict_entry(space, key)
        categories = space_categories(entry)
        columns.extend(categories if categories is not None else (None,) * int(entry.shape[0]))
    return tuple(columns)


def scalar_keys(space: spaces.Dict | spaces.Tuple, keys: tuple[DictKey, ...]) -> tuple[DictKey, ...]:
    """The ``keys`` whose entries are ``Discrete``: a single category, no axis of its own."""
    return tuple(key for key in keys if isinstance(dict_entry(space, key), spaces.Discrete))


def flatten_space(space: spaces.Dict | spaces.Tuple) -> spaces.Box:
    """The Box of the concatenated entries of a Dict of flat Boxes (``gymnasium.spaces.flatten_space``); with
    categorical entries (see :func:`dict_keys`), each category variable is one column from 0 to its last
    category."""
    keys = dict_keys(space, categorical=True)
    parts = []
    for key in keys:
        entry = dict_entry(space, key)
        categories = space_categories(entry)
        if categories is not None:
            entry = spaces.Box(0, np.array(categories) - 1, dtype=np.int64)
        parts.append(entry)
    dtype = np.result_type(*(p.dtype for p in parts))
    low = np.concatenate([p.low for p in parts]).astype(dtype)
    high = np.concatenate([p.high for p in parts]).astype(dtype)
    return spaces.Box(low=low, high=high, dtype=dtype)


def flatten_observation(
    observation: Any, keys: tuple[DictKey, ...], width: int | None = None, scalars: tuple[DictKey, ...] = ()
) -> np.ndarray:
    """Concatenate the ``keys`` entries of a Dict or Tuple observation along the last axis: one observation
    ``(D,)``, a batch ``(n, D)`` or an episode ``(T, D)``, float64. The entries of ``scalars`` (``Discrete``
    ones: a category, a batch ``(n,)`` or an episode ``(T,)`` of them) are one column each.

    With ``width`` (the flattened size ``D``), an array of that last size is taken as flattened already (what a
    ``FlattenObservation``-wrapped environment gives for Boxes) and returned as it is.
    """
    composite = isinstance(observation, Mapping | tuple)
    if width is not None and not composite:
        array = np.asarray(observation)
        if array.ndim in (1, 2) and array.shape[-1] == width and array.dtype.kind in "biuf":
            return array.astype(np.float64)
    if not composite:
        flat = "" if width is None else f" or its flattened array of {width} values"
        kind = "Tuple" if all(isinstance(key, int) for key in keys) else "Dict"
        raise TypeError(
            f"expected a {kind} observation with entries {[dict_key_name(k) for k in keys]}{flat}, "
            f"got {type(observation).__name__}"
        )
    missing = [dict_key_name(key) for key in keys if not has_dict_entry(observation, key)]
    if missing:
        has = sorted(observation) if isinstance(observation, Mapping) else f"{len(observation)} entries"
        raise ValueError(f"the observation is missing {missing}; it has {has}")
    parts = [np.asarray(dict_entry(observation, key), dtype=np.float64) for key in keys]
    parts = [part[..., None] if key in scalars else part for key, part in zip(keys, parts, strict=True)]
    shapes = {dict_key_name(key): part.shape for key, part in zip(keys, parts, strict=True)}
    if len({p.ndim for p in parts}) != 1 or parts[0].ndim not in (1, 2) or len({p.shape[:-1] for p in parts}) != 1:
        raise ValueError(f"observation entries must all be (D,) or all (n, D) with the same n; got {shapes}")
    return np.concatenate(parts, axis=-1)


def space_to_dict(space: spaces.Space) -> dict[str, Any]:
    """A JSON-friendly description of a Box, Dict, Discrete, MultiDiscrete or MultiBinary space (for checkpoints)."""
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "low": space.low.tolist(),
            "high": space.high.tolist(),
            "shape": list(space.shape),
            "dtype": str(space.dtype),
        }
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_dict(s) for k, s in space.spaces.items()}}
    if isinstance(space, spaces.Tuple):
        return {"type": "Tuple", "spaces": [space_to_dict(s) for s in space.spaces]}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "nvec": space.nvec.tolist(),
            "start": space.start.tolist(),
            "dtype": str(space.dtype),
        }
    if isinstance(space, spaces.MultiBinary):
        n = space.n  # an int, or the shape as given
        return {"type": "MultiBinary", "n": int(n) if np.ndim(n) == 0 else [int(x) for x in n]}
    raise TypeError(
        f"unsupported space {space!r}: tt_agents handles Box, Dict, Tuple, Discrete, MultiDiscrete, MultiBinary"
    )


def space_from_dict(d: Mapping[str, Any]) -> spaces.Space:
    """The space described by :func:`space_to_dict`."""
    if d["type"] == "Box":
        low, high = np.array(d["low"], dtype=d["dtype"]), np.array(d["high"], dtype=d["dtype"])
        return spaces.Box(low=low, high=high, shape=tuple(d["shape"]), dtype=d["dtype"])
    if d["type"] == "Dict":
        return spaces.Dict(OrderedDict((k, space_from_dict(s)) for k, s in d["spaces"].items()))  # saved order
    if d["type"] == "Tuple":
        return spaces.Tuple([space_from_dict(s) for s in d["spaces"]])
    if d["type"] == "Discrete":
        return spaces.Discrete(int(d["n"]), start=int(d["start"]))
    if d["type"] == "MultiDiscrete":
        dtype = np.dtype(d["dtype"])
        return spaces.MultiDiscrete(np.array(d["nvec"], dtype), dtype=dtype, start=np.array(d["start"], dtype))
    if d["type"] == "MultiBinary":
        return spaces.MultiBinary(d["n"] if isinstance(d["n"], int) else tuple(d["n"]))
    raise ValueError(f"unknown space type {d['type']!r}")
