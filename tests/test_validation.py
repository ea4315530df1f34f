"""The configuration dataclasses' shared checks: types against annotations, value rules, JSON construction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from tt_agents._validation import check_types, dataclass_from_dict, in_unit_interval, require


@dataclass
class Example:
    widths: tuple[int, ...] = (8, 8)
    betas: tuple[float, float] = (0.9, 0.95)
    rate: float = 0.5
    steps: int = 10
    name: str | None = None

    def __post_init__(self) -> None:
        check_types(self)
        require(self, {"rate": (in_unit_interval(self.rate), "in (0, 1]")})


def test_types_are_checked_against_each_annotation() -> None:
    assert Example(widths=(), rate=1, name="a").rate == 1  # an int is a float, an empty tuple[int, ...] fits
    for changes in ({"widths": (8, 8.0)}, {"widths": [8]}, {"betas": (0.9,)}, {"steps": True}, {"name": 3}):
        with pytest.raises(TypeError, match=f"Example.{next(iter(changes))} must be"):
            Example(**changes)


def test_numpy_scalars_become_python_numbers_and_values_are_checked() -> None:
    example = Example(steps=np.int64(3), rate=np.float32(0.25))
    assert type(example.steps) is int and type(example.rate) is float
    with pytest.raises(ValueError, match=r"Example.rate must be in \(0, 1\], got 0.0"):
        Example(rate=0.0)


def test_from_a_mapping_lists_become_tuples_and_unknown_fields_are_named() -> None:
    assert dataclass_from_dict(Example, {"widths": [4, 2], "betas": [0.5, 0.5]}) == Example((4, 2), (0.5, 0.5))
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['rat'\]"):
        dataclass_from_dict(Example, {"rat": 0.5})
    with pytest.raises(TypeError, match="must be a mapping"):
        dataclass_from_dict(Example, [("rate", 0.5)])
