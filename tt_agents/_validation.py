"""Checks shared by the configuration dataclasses: each field's type against its annotation, value rules with
errors that name the field, and construction from a JSON mapping."""

from __future__ import annotations

import numbers
import types
import typing
from dataclasses import fields
from typing import Any, Literal

import numpy as np


def _matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits the type hint ``hint`` (the hints the config dataclasses use: scalars, ``X | None``,
    ``Literal`` of strings, ``tuple[float, float]``, ``tuple[int, ...]``). ``bool`` is not an int here, and an int
    is a float."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if origin is Literal:  # the value itself is checked (a ValueError) by __post_init__
        return isinstance(value, type(args[0]))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return isinstance(value, tuple) and all(_matches(item, args[0]) for item in value)
        return isinstance(value, tuple) and len(value) == len(args) and all(map(_matches, value, args))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def as_python_number(value: Any) -> Any:
    """A NumPy (or other non-builtin) integer or real scalar as Python's ``int`` or ``float`` (such as the
    ``np.int64`` of ``gymnasium.spaces.Discrete(n).n``); anything else unchanged."""
    if type(value) in (bool, int, float) or not isinstance(value, numbers.Real):
        return value
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def as_widths(hidden: Any) -> Any:
    """Layer widths given as a list, tuple or NumPy array, as a tuple of Python ints where they are whole numbers
    (``np.int64(64)``, ``64.0``); anything else unchanged, for the type check to name."""
    if not isinstance(hidden, list | tuple | np.ndarray):
        return hidden
    items = (as_python_number(h) for h in np.asarray(hidden, dtype=object).reshape(-1))
    return tuple(int(h) if isinstance(h, float) and h.is_integer() else h for h in items)


def check_types(config: Any) -> None:
    """A TypeError naming the first field of the dataclass ``config`` whose value does not fit its annotation;
    NumPy scalars are first taken as Python numbers (so that the config stays JSON)."""
    hints = typing.get_type_hints(type(config))
    for f in fields(config):
        value = as_python_number(getattr(config, f.name))
        setattr(config, f.name, value)
        if not _matches(value, hints[f.name]):
            raise TypeError(f"{type(config).__name__}.{f.name} must be {hints[f.name]}, got {value!r}")


def require(config: Any, checks: dict[str, tuple[bool, str]]) -> None:
    """A ValueError naming the first field of ``config`` whose check fails: ``{field: (ok, what it must be)}``."""
    for name, (ok, must) in checks.items():
        if not ok:
            raise ValueError(f"{type(config).__name__}.{name} must be {must}, got {getattr(config, name)!r}")


def in_unit_interval(value: float | None, closed_low: bool = False) -> bool:
    """``value`` in (0, 1] (or [0, 1] with ``closed_low``); ``None`` passes."""
    return value is None or (0.0 <= value <= 1.0 if closed_low else 0.0 < value <= 1.0)


def dataclass_from_dict(cls: type, d: dict[str, Any]) -> Any:
    """``cls(**d)`` with lists taken as tuples (JSON has no tuples); a TypeError for a non-mapping and a ValueError
    naming unknown fields."""
    if not isinstance(d, dict):
        raise TypeError(f"{cls.__name__}: settings must be a mapping of field names to values, got {d!r}")
    known = {f.name for f in fields(cls)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}; known fields are {sorted(known)}")
    return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})
