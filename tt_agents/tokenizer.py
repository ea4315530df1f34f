"""Per-column discretization of continuous values into tokens.

Each of the ``D`` columns of a joined transition row (see :class:`~tt_agents.layout.TransitionLayout`) gets
its own ``n_bins`` bins: ``quantile`` bins each hold ~1/N of the fitted data (the paper's choice),
``uniform`` bins have equal width over the column's [min, max]. A token is the index of the bin a value
falls into and decodes to that bin's centre, so inside the fitted range ``|decode(encode(x)) - x|`` is at
most half the bin's width; values outside it clip to the first or last bin.

A *categorical* column (a discrete action: integers ``0 .. n - 1``, ``n <= n_bins``) is not discretized: value
``k`` is token ``k`` and decodes to ``k`` exactly; tokens ``n ..`` are unused (:meth:`Tokenizer.valid_tokens`).

Repeated values make repeated edges, i.e. bins of width 0. A value equal to a repeated edge is encoded to
the degenerate bin ``[value, value]``, so it decodes back exactly; a constant column decodes to its constant.

``encode``, ``decode`` and ``expectation`` take numpy arrays or torch tensors and return the same kind, on
the same device. Per-device copies of the bin tables are cached, so a planning loop does not re-upload them.
"""

from __future__ import annotations

import json
import operator
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeVar

import numpy as np
import torch

from ._io import write_json_atomic
from .config import TokenizerConfig
from .spaces import are_categories

Array = TypeVar("Array", np.ndarray, torch.Tensor)
Columns = int | slice | Sequence[int] | None

_NOT_FITTED = "Tokenizer is not fitted; call fit(data) first"


class _Tables(NamedTuple):
    """Bin tables of the selected columns: numpy arrays, or tensors on one device."""

    lower_edges: Any  # (d, n_bins) float64: edges[:, :-1], the boundaries searched by encode
    upper_edges: Any  # (d, n_bins) float64: edges[:, 1:]
    centers: Any  # (d, n_bins) float64
    centers32: Any  # (d, n_bins) float32: what decode returns
    rows: Any  # (d,) int64: arange(d), the row index of decode's lookup


def _xp(a: np.ndarray | torch.Tensor) -> Any:
    """The array module of ``a``: ``torch`` for tensors, ``numpy`` otherwise."""
    return torch if isinstance(a, torch.Tensor) else np


def _searchsorted(lower_edges: Array, values: Array, side: Literal["left", "right"]) -> Array:
    """Row-wise searchsorted: lower_edges (d, n_bins) sorted rows, values (d, m) -> (d, m) int64."""
    if isinstance(values, torch.Tensor):
        return torch.searchsorted(lower_edges, values.contiguous(), side=side)
    counts = [np.searchsorted(row, v, side=side) for row, v in zip(lower_edges, values, strict=True)]
    return np.stack(counts).astype(np.int64, copy=False)


def _check_last_axis(a: np.ndarray | torch.Tensor, size: int, where: str, what: str) -> None:
    if a.ndim < 1 or a.shape[-1] != size:
        raise ValueError(f"{where}: expected {what} with last axis of size {size}, got shape {tuple(a.shape)}")


def _check_finite(a: Array, where: str, what: str, columns: Sequence[int]) -> None:
    """Raise ValueError naming the first column of ``a`` (..., d) holding NaN or inf."""
    xp = _xp(a)
    if bool(xp.isfinite(a).all()):
        return
    flat = a.reshape(-1, a.shape[-1])  # (m, d)
    j = (~xp.isfinite(flat)).any(0).tolist().index(True)
    kind = "NaN" if bool(xp.isnan(flat[:, j]).any()) else "inf"
    raise ValueError(f"{where}: {what} has {kind} in column {columns[j]}")


def _is_integer(a: np.ndarray | torch.Tensor) -> bool:
    if isinstance(a, torch.Tensor):
        return not (a.is_floating_point() or a.is_complex() or a.dtype == torch.bool)
    return a.dtype.kind in "iu"


class Tokenizer:
    """Per-column discretizer: each of D columns gets n_bins bins."""

    def __init__(self, n_bins: int = 100, strategy: Literal["quantile", "uniform"] = "quantile") -> None:
        config = TokenizerConfig(n_bins=operator.index(n_bins), strategy=strategy)  # validates both
        self._n_bins = config.n_bins
        self._strategy = config.strategy
        self._edges: np.ndarray | None = None  # (D, n_bins + 1) float64
        self._centers: np.ndarray | None = None  # (D, n_bins) float64
        self._categories: tuple[int | None, ...] = ()  # (D,) categories of each categorical column, else None
        self._tables: dict[tuple[torch.device | None, tuple[int, ...]], _Tables] = {}

    @classmethod
    def from_config(cls, config: TokenizerConfig) -> Tokenizer:
        """An unfitted tokenizer with the bins and strategy of ``config``."""
        return cls(n_bins=config.n_bins, strategy=config.strategy)

    def __repr__(self) -> str:
        columns = f"n_columns={self.n_columns}" if self.fitted else "unfitted"
        return f"Tokenizer(n_bins={self.n_bins}, strategy={self.strategy!r}, {columns})"

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_tables": {}}  # device copies are a cache: don't pickle them

    # ------------------------------------------------------------------ properties

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`from_state_dict`) has set the edges."""
        return self._edges is not None

    @property
    def n_bins(self) -> int:
        """Bins per column."""
        return self._n_bins

    @property
    def strategy(self) -> str:
        """``quantile`` or ``uniform``."""
        return self._strategy

    @property
    def n_columns(self) -> int:
        """Number of fitted columns D."""
        return self.edges.shape[0]

    @property
    def edges(self) -> np.ndarray:
        """(D, n_bins + 1) float64, read-only: bin edges, non-decreasing per row, from column min to max."""
        if self._edges is None:
            raise RuntimeError(_NOT_FITTED)
        return self._edges

    @property
    def centers(self) -> np.ndarray:
        """(D, n_bins) float64, read-only: bin centres ``(edges[:, i] + edges[:, i + 1]) / 2``."""
        if self._centers is None:
            raise RuntimeError(_NOT_FITTED)
        return self._centers

    @property
    def categories(self) -> tuple[int | None, ...]:
        """Per column: the number of categories of a categorical column, or None for a continuous one."""
        if self._edges is None:
            raise RuntimeError(_NOT_FITTED)
        return self._categories

    @property
    def categorical_columns(self) -> tuple[int, ...]:
        """The indices of the categorical columns."""
        return tuple(column for column, n in enumerate(self.categories) if n is not None)

    def valid_tokens(self) -> np.ndarray:
        """(D, n_bins) bool: the tokens a column can hold (all of them, except past a categorical column's
        categories)."""
        valid = np.ones((self.n_columns, self.n_bins), dtype=bool)
        for column, n in enumerate(self.categories):
            if n is not None:
                valid[column, n:] = False
        return valid

    def bin_widths(self, floor_fraction: float = 0.1) -> np.ndarray:
        """(D, n_bins) float64: every bin's width, floored at ``floor_fraction`` of the column's uniform bin width
        (quantile bins of repeated values have zero width; a density over them needs a width). A column of one
        value gets the smallest positive float32."""
        floor = (self.edges[:, -1:] - self.edges[:, :1]) * floor_fraction / self.n_bins  # (D, 1)
        return np.maximum(np.diff(self.edges, axis=1), np.maximum(floor, np.finfo(np.float32).tiny))

    # ------------------------------------------------------------------ fitting

    def fit(self, data: np.ndarray, categories: dict[int, int] | None = None) -> Tokenizer:
        """Fit the bin edges of each column of ``data`` (n, D); returns ``self``.

        ``categories``: ``{column: n}`` for categorical columns, whose values must be the integers ``0 .. n - 1``
        (``n <= n_bins``); they get one token per category instead of fitted bins.
        """
        data = np.asarray(data, dtype=np.float64)  # (n, D)
        if data.ndim != 2:
            raise ValueError(f"Tokenizer.fit: data must be 2-D (n, D), got shape {data.shape}")
        if data.shape[0] < 2 or data.shape[1] < 1:
            raise ValueError(f"Tokenizer.fit: data needs at least 2 rows and 1 column, got shape {data.shape}")
        _check_finite(data, "Tokenizer.fit", "data", range(data.shape[1]))
        per_column = self._check_categories(categories or {}, data.shape[1])
        for column, n in enumerate(per_column):
            values = data[:, column]
            if n is not None and not are_categories(values, n):
                raise ValueError(
                    f"Tokenizer.fit: categorical column {column} must hold the integers 0 .. {n - 1}, got values in "
                    f"[{values.min():g}, {values.max():g}]"
                )
        if self.strategy == "uniform":
            edges = np.linspace(data.min(axis=0), data.max(axis=0), self.n_bins + 1, axis=1)
        else:
            quantiles = np.linspace(0.0, 1.0, self.n_bins + 1)
            # The running maximum guards against rounding in the interpolation between sorted values.
            edges = np.maximum.accumulate(np.quantile(data, quantiles, axis=0).T, axis=1)
        self._set_edges(edges, per_column)
        return self

    def _check_categories(self, categories: dict[int, int], n_columns: int) -> tuple[int | None, ...]:
        """``{column: n}`` as one entry per column (None where continuous); a ValueError naming a bad entry."""
        per_column: list[int | None] = [None] * n_columns
        for column, n in categories.items():
            if not (isinstance(column, int) and 0 <= column < n_columns):
                raise ValueError(f"Tokenizer: categorical column {column!r} is not one of the {n_columns} columns")
            if not (isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= self.n_bins):
                raise ValueError(
                    f"Tokenizer: column {column} must have 1 to n_bins ({self.n_bins}) categories, got {n}"
                )
            per_column[column] = n
        return tuple(per_column)

    def _set_edges(self, edges: np.ndarray, categories: tuple[int | None, ...] | None = None) -> None:
        """Install validated edges (D, n_bins + 1), one bin per category in categorical columns, and derive the
        centres; drops the device cache."""
        self._edges = np.array(edges, dtype=np.float64)
        self._categories = categories or (None,) * len(self._edges)
        for column, n in enumerate(self._categories):
            if n is not None:  # edges -0.5, 0.5, ..., n - 0.5, then unused bins of width 0 at n - 0.5
                self._edges[column] = np.concatenate([np.arange(n + 1) - 0.5, np.full(self.n_bins - n, n - 0.5)])
        self._centers = (self._edges[:, :-1] + self._edges[:, 1:]) / 2
        self._edges.flags.writeable = False
        self._centers.flags.writeable = False
        self._tables = {}

    # ------------------------------------------------------------------ encode / decode

    def _select(self, columns: Columns) -> tuple[int, ...]:
        """Normalise a column selection to a tuple of non-negative column indices."""
        all_columns = range(self.n_columns)
        if columns is None:
            selected = tuple(all_columns)
        elif isinstance(columns, slice):
            selected = tuple(all_columns[columns])
        else:
            items = [columns] if isinstance(columns, int | np.integer) else columns
            try:
                selected = tuple(all_columns[operator.index(c)] for c in items)
            except IndexError:
                raise ValueError(f"Tokenizer: columns {columns} out of range for {self.n_columns} columns") from None
        if not selected:
            raise ValueError(f"Tokenizer: columns {columns} selects no column")
        return selected

    def _table(self, like: np.ndarray | torch.Tensor, columns: tuple[int, ...]) -> _Tables:
        """The bin tables of ``columns`` as numpy arrays, or as tensors on the device of ``like``."""
        device = like.device if isinstance(like, torch.Tensor) else None
        key = (device, columns)
        if key not in self._tables:
            index = list(columns)
            centers = self.centers[index]
            edges = self.edges[index]
            arrays = (edges[:, :-1], edges[:, 1:], centers, centers.astype(np.float32), np.arange(len(index)))
            if device is not None:
                arrays = tuple(torch.as_tensor(a, device=device) for a in arrays)
            self._tables[key] = _Tables(*arrays)
        return self._tables[key]

    def encode(self, x: Array, columns: Columns = None) -> Array:
        """Tokens of ``x`` (..., d): int64 in [0, n_bins - 1], same kind and device as ``x``.

        ``columns`` (a slice, an int or a sequence of ints; default all) selects the d fitted columns that
        the last axis of ``x`` holds. Values outside the fitted range clip to the first or last bin.
        """
        selected = self._select(columns)
        x = x.to(torch.float64) if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
        _check_last_axis(x, len(selected), "Tokenizer.encode", "x")
        _check_finite(x, "Tokenizer.encode", "x", selected)
        table = self._table(x, selected)
        values = x.reshape(-1, len(selected)).T  # (d, m)
        left = _searchsorted(table.lower_edges, values, "left")  # (d, m): number of lower edges < value
        right = _searchsorted(table.lower_edges, values, "right")  # (d, m): number of lower edges <= value
        # right - 1 is the bin of the largest lower edge <= value; if the edge below it equals the value too,
        # bin right - 2 is the degenerate [value, value], which decodes to the value exactly.
        xp = _xp(x)
        tokens = xp.clip(xp.where(right - left >= 2, right - 2, right - 1), 0, self.n_bins - 1)  # (d, m)
        return tokens.T.reshape(x.shape)

    def decode(self, tokens: Array, columns: Columns = None) -> Array:
        """Bin centres (float32) of integer ``tokens`` (..., d), same kind and device as ``tokens``.

        ``columns`` selects the fitted columns as in :meth:`encode`.
        """
        selected = self._select(columns)
        tokens = tokens if isinstance(tokens, torch.Tensor) else np.asarray(tokens)
        _check_last_axis(tokens, len(selected), "Tokenizer.decode", "tokens")
        if not _is_integer(tokens):
            raise ValueError(f"Tokenizer.decode: tokens must be integers, got dtype {tokens.dtype}")
        if bool(((tokens < 0) | (tokens >= self.n_bins)).any()):
            raise ValueError(
                f"Tokenizer.decode: tokens must be in [0, {self.n_bins - 1}], "
                f"got values in [{int(tokens.min())}, {int(tokens.max())}]"
            )
        if isinstance(tokens, torch.Tensor):
            tokens = tokens.long()  # torch indexes with int64 (uint8 would be read as a mask)
        table = self._table(tokens, selected)
        return table.centers32[table.rows, tokens]

    def expectation(self, probs: Array, column: int) -> Array:
        """Expected bin centre of ``column`` under ``probs`` (..., n_bins) -> (...).

        ``probs`` need not be normalised: it is divided by its sum over the last axis (an all-zero row gives
        NaN). numpy input gives float64, torch input keeps its floating dtype and device.
        """
        selected = self._select(operator.index(column))
        if isinstance(probs, torch.Tensor):
            probs = probs if probs.is_floating_point() else probs.float()
        else:
            probs = np.asarray(probs, dtype=np.float64)
        _check_last_axis(probs, self.n_bins, "Tokenizer.expectation", "probs (one entry per bin)")
        centers = self._table(probs, selected).centers[0]  # (n_bins,)
        if isinstance(probs, torch.Tensor):
            centers = centers.to(probs.dtype)
        return (probs * centers).sum(-1) / probs.sum(-1)

    def quantile(self, probs: Array, column: int, q: float) -> Array:
        """The ``q``-quantile of ``column`` under ``probs`` (..., n_bins) -> (...), each bin's mass spread evenly
        over it (so the quantile moves continuously with ``q``; a bin of zero width is a point).

        ``q`` in (0, 1); ``probs`` need not be normalised. numpy input gives float64, torch input keeps its
        floating dtype and device.
        """
        if not 0.0 < q < 1.0:
            raise ValueError(f"Tokenizer.quantile: q must be in (0, 1), got {q}")
        selected = self._select(operator.index(column))
        as_numpy = not isinstance(probs, torch.Tensor)
        p = torch.as_tensor(np.asarray(probs, dtype=np.float64)) if as_numpy else probs
        p = p if p.is_floating_point() else p.float()
        _check_last_axis(p, self.n_bins, "Tokenizer.quantile", "probs (one entry per bin)")
        table = self._table(p, selected)
        lower = table.lower_edges[0].to(p.dtype)  # (n_bins,)
        width = table.upper_edges[0].to(p.dtype) - lower  # (n_bins,)
        p = p / p.sum(-1, keepdim=True)
        cdf = p.cumsum(-1)  # (..., n_bins)
        index = (cdf < q).sum(-1, keepdim=True).clamp(max=self.n_bins - 1)  # (..., 1) the bin holding q
        mass = p.gather(-1, index)  # (..., 1)
        before = cdf.gather(-1, index) - mass  # (..., 1) the mass below that bin
        fraction = ((q - before) / torch.where(mass > 0, mass, 1.0)).clamp(0.0, 1.0)  # (..., 1) how far into it
        value = (lower[index] + fraction * width[index])[..., 0]
        return value.numpy() if as_numpy else value

    # ------------------------------------------------------------------ persistence

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state: ``n_bins``, ``strategy``, ``edges`` (D lists of n_bins + 1 floats) and, when a
        column is categorical, ``categories`` (D entries: a number of categories or None)."""
        state = {"n_bins": self.n_bins, "strategy": self.strategy, "edges": self.edges.tolist()}
        if any(n is not None for n in self.categories):
            state["categories"] = list(self.categories)
        return state

    @classmethod
    def from_state_dict(cls, d: dict[str, Any]) -> Tokenizer:
        """A fitted tokenizer from :meth:`state_dict` output; ValueError if ``d`` is malformed."""
        where = "Tokenizer.from_state_dict"
        if not isinstance(d, dict):
            raise ValueError(f"{where}: expected a dict, got {type(d).__name__}")
        missing = {"n_bins", "strategy", "edges"} - set(d)
        if missing:
            raise ValueError(f"{where}: missing key(s) {sorted(missing)}")
        try:
            tokenizer = cls(n_bins=d["n_bins"], strategy=d["strategy"])
            edges = np.asarray(d["edges"], dtype=np.float64)  # (D, n_bins + 1)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: {e}") from e
        n_edges = tokenizer.n_bins + 1
        if edges.ndim != 2 or edges.shape[0] < 1 or edges.shape[1] != n_edges:
            raise ValueError(f"{where}: edges must have shape (D, n_bins + 1) = (D, {n_edges}), got {edges.shape}")
        if not np.isfinite(edges).all():
            raise ValueError(f"{where}: edges must be finite")
        decreasing = np.flatnonzero((np.diff(edges, axis=1) < 0).any(axis=1))
        if decreasing.size:
            raise ValueError(f"{where}: edges must be non-decreasing, column {decreasing[0]} is not")
        categories = d.get("categories") or [None] * len(edges)
        if not isinstance(categories, list) or len(categories) != len(edges):
            raise ValueError(f"{where}: categories must be a list of {len(edges)} entries")
        try:
            per_column = tokenizer._check_categories(
                {c: n for c, n in enumerate(categories) if n is not None}, len(edges)
            )
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from e
        tokenizer._set_edges(edges, per_column)
        return tokenizer

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`state_dict` as JSON to ``path`` atomically (temporary file, then ``os.replace``)."""
        write_json_atomic(path, self.state_dict(), indent=None)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Tokenizer:
        """Read a tokenizer written by :meth:`save`.

        Raises FileNotFoundError if ``path`` does not exist, ValueError naming ``path`` if it is not valid.
        """
        path = Path(path)
        try:
            with path.open(encoding="utf-8") as f:
                return cls.from_state_dict(json.load(f))
        except ValueError as e:  # also JSONDecodeError and UnicodeDecodeError
            raise ValueError(f"Tokenizer.load: {path} is not a valid tokenizer file: {e}") from e
