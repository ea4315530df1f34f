"""Tests of the per-column discretizer: bins, round trips, expectation, persistence, errors, torch paths."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from tt_agents.config import TokenizerConfig
from tt_agents.tokenizer import Tokenizer

STRATEGIES = ["quantile", "uniform"]
BACKENDS = ["numpy", "torch"]


def mixed_data(n: int, seed: int = 0) -> np.ndarray:
    """(n, 5): gaussian mixture, skewed exponential, constant, 50% zeros, and a discrete column."""
    rng = np.random.default_rng(seed)
    mixture = np.where(rng.random(n) < 0.3, rng.normal(-3.0, 0.5, n), rng.normal(5.0, 2.0, n))
    exponential = rng.exponential(2.0, n)
    constant = np.full(n, 1.2345)
    half_zeros = np.where(np.arange(n) % 2 == 0, 0.0, rng.exponential(1.0, n))
    discrete = rng.integers(0, 5, n).astype(np.float64)
    return np.stack([mixture, exponential, constant, half_zeros, discrete], axis=1)


def to_backend(a: np.ndarray, backend: str) -> np.ndarray | torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)) if backend == "torch" else a


def to_numpy(a: np.ndarray | torch.Tensor) -> np.ndarray:
    return a.numpy() if isinstance(a, torch.Tensor) else a


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return mixed_data(2000)


@pytest.fixture(scope="module", params=STRATEGIES)
def fitted(request: pytest.FixtureRequest, data: np.ndarray) -> Tokenizer:
    return Tokenizer(n_bins=20, strategy=request.param).fit(data)


# ---- bins


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_trip_within_half_bin(fitted: Tokenizer, data: np.ndarray, backend: str) -> None:
    tokens = fitted.encode(to_backend(data, backend))
    decoded = fitted.decode(tokens)
    assert type(tokens) is type(decoded) is type(to_backend(data, backend))
    tokens, decoded = to_numpy(tokens), to_numpy(decoded)
    assert tokens.dtype == np.int64 and decoded.dtype == np.float32
    assert tokens.min() >= 0 and tokens.max() <= fitted.n_bins - 1
    for j in range(data.shape[1]):
        t, x = tokens[:, j], data[:, j]
        low, high = fitted.edges[j, t], fitted.edges[j, t + 1]
        assert np.all((low <= x) & (x <= high)), f"column {j}: value outside its bin"
        centre = fitted.centers[j, t]
        assert np.all(np.abs(centre - x) <= (high - low) / 2 + 1e-9), f"column {j}"
        np.testing.assert_array_equal(decoded[:, j], centre.astype(np.float32))


def test_edges_and_centers(fitted: Tokenizer, data: np.ndarray) -> None:
    edges, centers = fitted.edges, fitted.centers
    assert edges.shape == (data.shape[1], fitted.n_bins + 1) and edges.dtype == np.float64
    assert centers.shape == (data.shape[1], fitted.n_bins) and centers.dtype == np.float64
    assert np.all(np.diff(edges, axis=1) >= 0)
    np.testing.assert_array_equal(edges[:, 0], data.min(axis=0))
    np.testing.assert_array_equal(edges[:, -1], data.max(axis=0))
    np.testing.assert_array_equal(centers, (edges[:, :-1] + edges[:, 1:]) / 2)
    assert fitted.n_columns == data.shape[1] and fitted.fitted


def test_quantile_bins_hold_equal_mass() -> None:
    n, n_bins = 100_000, 100
    data = mixed_data(n, seed=1)[:, :2]  # the continuous columns
    tokens = Tokenizer(n_bins=n_bins, strategy="quantile").fit(data).encode(data)
    for j in range(data.shape[1]):
        fractions = np.bincount(tokens[:, j], minlength=n_bins) / n
        assert np.all(np.abs(fractions - 1 / n_bins) <= 0.2 / n_bins), f"column {j}: {fractions}"


def test_uniform_bins_have_equal_width(data: np.ndarray) -> None:
    tokenizer = Tokenizer(n_bins=20, strategy="uniform").fit(data)
    span = data.max(axis=0) - data.min(axis=0)
    widths = np.diff(tokenizer.edges, axis=1)
    np.testing.assert_allclose(widths, np.broadcast_to(span[:, None] / 20, widths.shape), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_constant_column_decodes_exactly(strategy: str, backend: str) -> None:
    data = np.stack([np.linspace(0, 1, 50), np.full(50, 2.5)], axis=1)
    tokenizer = Tokenizer(n_bins=10, strategy=strategy).fit(data)
    queries = np.array([[0.5, 2.5], [0.5, 2.4], [0.5, 7.0]])  # the constant, and values off it (clipped)
    decoded = to_numpy(tokenizer.decode(tokenizer.encode(to_backend(queries, backend))))
    np.testing.assert_array_equal(decoded[:, 1], 2.5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_value_on_repeated_edge_decodes_to_itself(backend: str) -> None:
    data = mixed_data(10_000)[:, 3:4]  # 50% zeros, then an exponential
    tokenizer = Tokenizer(n_bins=100, strategy="quantile").fit(data)
    assert np.sum(tokenizer.edges[0] == 0.0) > 2  # the edge 0 repeats
    decoded = to_numpy(tokenizer.decode(tokenizer.encode(to_backend(np.zeros((3, 1)), backend))))
    np.testing.assert_array_equal(decoded, 0.0)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_out_of_range_values_clip_to_end_bins(strategy: str, data: np.ndarray) -> None:
    tokenizer = Tokenizer(n_bins=20, strategy=strategy).fit(data)
    below, above = data.min(axis=0) - 100.0, data.max(axis=0) + 100.0
    tokens = tokenizer.encode(np.stack([below, above]))
    np.testing.assert_array_equal(tokens[0], 0)
    np.testing.assert_array_equal(tokens[1], 19)


# ---- numpy vs torch


def test_torch_and_numpy_give_identical_tokens(fitted: Tokenizer, data: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    queries = np.concatenate(
        [
            data,
            fitted.edges.T,  # values exactly on every edge
            data + rng.normal(0.0, 0.5, data.shape),  # values between edges and outside the range
        ]
    )
    tokens_np = fitted.encode(queries)
    tokens_torch = fitted.encode(torch.from_numpy(queries).float())  # float32 input is compared in float64
    np.testing.assert_array_equal(fitted.encode(queries.astype(np.float32)), tokens_torch.numpy())
    tokens_torch64 = fitted.encode(torch.from_numpy(queries))
    assert tokens_torch64.dtype == torch.int64
    np.testing.assert_array_equal(tokens_np, tokens_torch64.numpy())
    np.testing.assert_array_equal(fitted.decode(tokens_np), fitted.decode(tokens_torch64).numpy())


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_shapes_are_kept(fitted: Tokenizer, data: np.ndarray, backend: str) -> None:
    x = to_backend(data[:24].reshape(2, 3, 4, data.shape[1]), backend)
    tokens = fitted.encode(x)
    assert tuple(tokens.shape) == tuple(x.shape)
    assert tuple(fitted.decode(tokens).shape) == tuple(x.shape)
    np.testing.assert_array_equal(to_numpy(tokens).reshape(24, -1), fitted.encode(data[:24]))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("columns", [slice(1, 4), 3, [4, 0], (-1,)])
def test_column_subsets(fitted: Tokenizer, data: np.ndarray, backend: str, columns: object) -> None:
    index = [columns] if isinstance(columns, int) else columns
    full = fitted.encode(data)
    tokens = fitted.encode(to_backend(data[:, index], backend), columns=columns)
    np.testing.assert_array_equal(to_numpy(tokens), full[:, index])
    np.testing.assert_array_equal(to_numpy(fitted.decode(tokens, columns=columns)), fitted.decode(full)[:, index])


def test_device_tables_are_cached(fitted: Tokenizer, data: np.ndarray) -> None:
    x = torch.from_numpy(data)
    fitted.encode(x)
    tables = dict(fitted._tables)
    fitted.encode(x)
    fitted.decode(fitted.encode(x))
    assert all(fitted._tables[key] is table for key, table in tables.items())


# ---- expectation


@pytest.mark.parametrize("backend", BACKENDS)
def test_expectation(fitted: Tokenizer, backend: str) -> None:
    n_bins, column = fitted.n_bins, 1
    centers = fitted.centers[column]
    one_hot = np.eye(n_bins)  # (n_bins, n_bins): row i puts all mass on bin i
    expected = to_numpy(fitted.expectation(to_backend(one_hot, backend), column))
    np.testing.assert_allclose(expected, centers, rtol=1e-12)
    uniform = to_numpy(fitted.expectation(to_backend(np.ones(n_bins), backend), column))
    np.testing.assert_allclose(uniform, centers.mean(), rtol=1e-12)
    probs = np.random.default_rng(3).random((4, 3, n_bins))  # unnormalised
    got = to_numpy(fitted.expectation(to_backend(7.0 * probs, backend), column))
    assert got.shape == (4, 3)
    np.testing.assert_allclose(got, (probs / probs.sum(-1, keepdims=True)) @ centers, rtol=1e-12)


def test_expectation_keeps_torch_dtype(fitted: Tokenizer) -> None:
    probs = torch.softmax(torch.randn(5, fitted.n_bins), dim=-1)
    got = fitted.expectation(probs, 0)
    assert got.dtype == torch.float32 and got.shape == (5,)
    np.testing.assert_allclose(got.numpy(), probs.double().numpy() @ fitted.centers[0], rtol=1e-5)


def test_expectation_rejects_wrong_bin_count(fitted: Tokenizer) -> None:
    with pytest.raises(ValueError, match=f"last axis of size {fitted.n_bins}"):
        fitted.expectation(np.ones(fitted.n_bins + 1), 0)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_quantile_spreads_each_bins_mass_over_the_bin(fitted: Tokenizer, backend: str) -> None:
    n_bins, column = fitted.n_bins, 1
    edges = fitted.edges[column]
    one_hot = np.eye(n_bins)  # all mass on bin i: the q-quantile is q of the way through it
    for q in (0.1, 0.5, 0.9):
        got = to_numpy(fitted.quantile(to_backend(one_hot, backend), column, q))
        np.testing.assert_allclose(got, edges[:-1] + q * np.diff(edges), rtol=1e-12, atol=1e-12)
    rng = np.random.default_rng(4)
    probs = rng.random((4, 3, n_bins))  # unnormalised
    for q in (0.05, 0.3, 0.75):
        got = to_numpy(fitted.quantile(to_backend(5.0 * probs, backend), column, q))
        assert got.shape == (4, 3)
        # the mass of the density below the answer is q
        cdf = np.concatenate([np.zeros((4, 3, 1)), np.cumsum(probs / probs.sum(-1, keepdims=True), -1)], -1)
        mass_below = np.array(
            [np.interp(v, edges, c) for v, c in zip(got.ravel(), cdf.reshape(-1, n_bins + 1), strict=True)]
        )
        np.testing.assert_allclose(mass_below, q, atol=1e-9)


def test_quantile_rises_with_q(fitted: Tokenizer) -> None:
    probs = torch.softmax(torch.randn(6, fitted.n_bins, dtype=torch.float64), dim=-1)
    low, median, high = (fitted.quantile(probs, 0, q) for q in (0.05, 0.5, 0.95))
    assert bool((low <= median).all() and (median <= high).all() and (low < high).all())
    assert fitted.quantile(probs.float(), 0, 0.5).dtype == torch.float32


@pytest.mark.parametrize("q", [0.0, 1.0, -0.5, 2.0])
def test_quantile_outside_the_open_unit_interval_is_refused(fitted: Tokenizer, q: float) -> None:
    with pytest.raises(ValueError, match="q must be in"):
        fitted.quantile(np.ones(fitted.n_bins), 0, q)


# ---- persistence


def test_state_dict_round_trip(fitted: Tokenizer, data: np.ndarray) -> None:
    state = json.loads(json.dumps(fitted.state_dict()))
    assert set(state) == {"n_bins", "strategy", "edges"}
    restored = Tokenizer.from_state_dict(state)
    assert (restored.n_bins, restored.strategy) == (fitted.n_bins, fitted.strategy)
    np.testing.assert_array_equal(restored.edges, fitted.edges)
    np.testing.assert_array_equal(restored.encode(data), fitted.encode(data))


def test_save_load_round_trip(fitted: Tokenizer, data: np.ndarray, tmp_path) -> None:
    path = tmp_path / "tokenizer.json"
    fitted.save(path)
    fitted.save(str(path))  # overwrites
    assert [p.name for p in tmp_path.iterdir()] == ["tokenizer.json"]  # no temporary file left
    restored = Tokenizer.load(path)
    np.testing.assert_array_equal(restored.encode(data), fitted.encode(data))


def test_load_corrupt_file_names_the_file(fitted: Tokenizer, tmp_path) -> None:
    path = tmp_path / "tokenizer.json"
    fitted.save(path)
    path.write_text(path.read_text()[:50])  # truncated
    with pytest.raises(ValueError, match=re.escape(str(path))):
        Tokenizer.load(path)
    path.write_text(json.dumps({"n_bins": 3, "strategy": "uniform", "edges": [[0.0, 1.0]]}))  # wrong content
    with pytest.raises(ValueError, match=re.escape(str(path))):
        Tokenizer.load(path)


def test_load_missing_file(tmp_path) -> None:
    path = tmp_path / "missing.json"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        Tokenizer.load(path)


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"n_bins": 2, "strategy": "uniform"}, "missing key"),
        ({"n_bins": 2, "strategy": "uniform", "edges": [[0.0, 1.0]]}, "shape"),
        ({"n_bins": 2, "strategy": "uniform", "edges": [[0.0, 1.0, float("nan")]]}, "finite"),
        ({"n_bins": 2, "strategy": "uniform", "edges": [[0.0, 1.0, 2.0], [0.0, 2.0, 1.0]]}, "column 1"),
        ({"n_bins": 1, "strategy": "uniform", "edges": [[0.0, 1.0]]}, "n_bins"),
        ({"n_bins": 2, "strategy": "median", "edges": [[0.0, 1.0, 2.0]]}, "strategy"),
        ({"n_bins": 2, "strategy": "uniform", "edges": "abc"}, "edges|could not convert"),
        ([1, 2, 3], "expected a dict"),
    ],
)
def test_from_state_dict_validates(state: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Tokenizer.from_state_dict(state)


# ---- construction, errors


def test_from_config() -> None:
    tokenizer = Tokenizer.from_config(TokenizerConfig(n_bins=7, strategy="uniform"))
    assert (tokenizer.n_bins, tokenizer.strategy, tokenizer.fitted) == (7, "uniform", False)


@pytest.mark.parametrize(("kwargs", "message"), [({"n_bins": 1}, "n_bins"), ({"strategy": "median"}, "strategy")])
def test_constructor_validates(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Tokenizer(**kwargs)


@pytest.mark.parametrize(("bad", "name"), [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "inf")])
def test_fit_rejects_non_finite(data: np.ndarray, bad: float, name: str) -> None:
    data = data.copy()
    data[7, 3] = bad
    with pytest.raises(ValueError, match=f"Tokenizer.fit: data has {name} in column 3"):
        Tokenizer().fit(data)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("bad", "name"), [(np.nan, "NaN"), (np.inf, "inf")])
def test_encode_rejects_non_finite(fitted: Tokenizer, data: np.ndarray, backend: str, bad: float, name: str) -> None:
    x = data[:10].copy()
    x[4, 2] = bad
    with pytest.raises(ValueError, match=f"x has {name} in column 2"):
        fitted.encode(to_backend(x, backend))
    with pytest.raises(ValueError, match=f"x has {name} in column 4"):  # named by the tokenizer's column index
        fitted.encode(to_backend(x[:, 1:3], backend), columns=[0, 4])


@pytest.mark.parametrize("shape", [(10,), (10, 3, 1), (0,)])
def test_fit_rejects_bad_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="2-D"):
        Tokenizer().fit(np.zeros(shape))


def test_fit_rejects_single_row() -> None:
    with pytest.raises(ValueError, match="at least 2 rows"):
        Tokenizer().fit(np.zeros((1, 3)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_wrong_column_count(fitted: Tokenizer, data: np.ndarray, backend: str) -> None:
    d = data.shape[1]
    with pytest.raises(ValueError, match=rf"last axis of size {d}, got shape \(10, {d - 1}\)"):
        fitted.encode(to_backend(data[:10, 1:], backend))
    with pytest.raises(ValueError, match=rf"last axis of size 2, got shape \(10, {d}\)"):
        fitted.decode(to_backend(np.zeros((10, d), dtype=np.int64), backend), columns=[0, 1])
    with pytest.raises(ValueError, match="out of range"):
        fitted.encode(data[:, :1], columns=d)


@pytest.mark.parametrize("backend", BACKENDS)
def test_decode_rejects_bad_tokens(fitted: Tokenizer, backend: str) -> None:
    d = fitted.n_columns
    for bad in (-1, fitted.n_bins):
        tokens = np.zeros((3, d), dtype=np.int64)
        tokens[1, 2] = bad
        with pytest.raises(ValueError, match=rf"tokens must be in \[0, {fitted.n_bins - 1}\]"):
            fitted.decode(to_backend(tokens, backend))
    with pytest.raises(ValueError, match="integers"):
        fitted.decode(to_backend(np.zeros((3, d)), backend))


def test_unfitted_use_raises() -> None:
    tokenizer = Tokenizer()
    message = r"Tokenizer is not fitted; call fit\(data\) first"
    with pytest.raises(RuntimeError, match=message):
        tokenizer.encode(np.zeros((2, 3)))
    with pytest.raises(RuntimeError, match=message):
        tokenizer.decode(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(RuntimeError, match=message):
        tokenizer.expectation(np.ones(100), 0)
    with pytest.raises(RuntimeError, match=message):
        tokenizer.state_dict()


def test_bin_widths_give_bins_of_repeated_values_a_floor() -> None:
    data = np.concatenate([np.zeros(500), np.linspace(0.0, 10.0, 500)])[:, None]  # half the mass on one value
    tokenizer = Tokenizer(10, strategy="quantile").fit(data)
    raw = np.diff(tokenizer.edges, axis=1)
    assert (raw == 0).any()
    widths = tokenizer.bin_widths()
    assert widths.shape == (1, 10) and np.all(widths >= 0.1 * 10.0 / 10) and np.all(widths >= raw)
    np.testing.assert_array_equal(widths[raw > 0.1], raw[raw > 0.1])


def test_a_categorical_column_is_one_token_per_category_and_round_trips_exactly() -> None:
    rng = np.random.default_rng(0)
    data = np.stack([rng.normal(size=300), rng.integers(0, 3, size=300)], axis=1)  # (300, 2)
    tokenizer = Tokenizer(10).fit(data, categories={1: 3})
    tokens = tokenizer.encode(data)
    np.testing.assert_array_equal(tokens[:, 1], data[:, 1])
    np.testing.assert_array_equal(tokenizer.decode(tokens)[:, 1], data[:, 1])
    assert tokenizer.valid_tokens()[1].tolist() == [True] * 3 + [False] * 7 and tokenizer.valid_tokens()[0].all()
    restored = Tokenizer.from_state_dict(tokenizer.state_dict())
    assert restored.categories == (None, 3)
    np.testing.assert_array_equal(restored.edges, tokenizer.edges)
    with pytest.raises(ValueError, match="categorical column 1 must hold the integers 0 .. 1"):
        Tokenizer(10).fit(data, categories={1: 2})
    with pytest.raises(ValueError, match="1 to n_bins"):
        Tokenizer(10).fit(data, categories={1: 11})
