"""KVCache: segments built from shapes, beam reshaping, key biases and attention over the segments."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from test_model import N_BINS, make_model

from tt_agents.kv_cache import KVCache, window_start


def test_cache_from_shapes_adds_segments_and_attends_like_plain_attention() -> None:
    """No model: a cache of two layers, one context row and two children, read by one query per child."""
    torch.manual_seed(0)
    H, hd = 2, 4
    key_bias = torch.zeros(16)
    key_bias[1] = float("-inf")  # a key never attended to
    cache = KVCache(n_layer=2, n_head=H, head_dim=hd, transition_dim=3, key_bias=key_bias)
    context = cache.add_segment(rows=1, capacity=6)
    assert [tuple(t.shape) for t in context.k + context.v] == [(1, H, 6, hd)] * 4
    assert all(bool((t == 0).all()) for t in context.k + context.v), "unwritten keys and values are zero"
    assert (context.start, cache.length, cache.room) == (0, 0, 6)

    q, k, v = torch.randn(3, 1, H, 3, hd).unbind(0)  # (R, H, n, hd): three context tokens
    biases = cache.attention_biases(3)
    y = cache.attend(0, q, k, v, biases)
    allowed = torch.ones(3, 3, dtype=torch.bool).tril()  # causal among the new tokens
    allowed[:, 1] = False
    torch.testing.assert_close(y, F.scaled_dot_product_attention(q, k, v, attn_mask=allowed))
    cache.append(torch.tensor([[1, 2, 3]]))
    assert (cache.length, cache.room) == (3, 3)

    cache.expand(2, capacity=2)
    beams = cache.segments[-1]
    assert (beams.rows, beams.start, cache.rows) == (2, 3, 2)
    q1, k1, v1 = torch.randn(3, 2, H, 1, hd).unbind(0)  # one new token per child
    y = cache.attend(0, q1, k1, v1, cache.attention_biases(1))
    keys = torch.cat([k.expand(2, -1, -1, -1), k1], dim=2)  # (2, H, 4, hd): shared context, own token
    values = torch.cat([v.expand(2, -1, -1, -1), v1], dim=2)
    scores = (q1 @ keys.transpose(-1, -2)) / math.sqrt(hd)
    scores[..., 1] = float("-inf")
    torch.testing.assert_close(y, torch.softmax(scores, dim=-1) @ values)


def test_window_start_keeps_whole_transitions() -> None:
    assert window_start(8, transition_dim=4, keep_transitions=2) == 0
    assert window_start(9, transition_dim=4, keep_transitions=2) == 4  # the partial third transition counts
    assert window_start(12, transition_dim=4, keep_transitions=1) == 8


def test_pads_must_be_whole_transitions() -> None:
    cache = KVCache(n_layer=1, n_head=1, head_dim=2, transition_dim=3, key_bias=torch.zeros(8))
    with pytest.raises(ValueError, match="multiple of transition_dim"):
        cache.set_pad(torch.tensor([0, 2]))


@pytest.mark.parametrize("goal_dim", [0, 2])
def test_expand_and_select_share_the_context_and_match_full_forward(goal_dim: int) -> None:
    model = make_model(goal_dim)
    D = model.layout.transition_dim
    torch.manual_seed(2)
    context = torch.randint(0, N_BINS, (2, goal_dim + D + 3))  # two environments
    cache, _ = model.prefill(context)
    cache.expand(3, capacity=D)  # three beams per environment
    suffix = torch.randint(0, N_BINS, (6, 2))
    out = model.decode(cache, suffix)
    history = torch.cat([context.repeat_interleave(3, dim=0), suffix], dim=1)
    torch.testing.assert_close(out, model(history)[0][:, -2:], atol=1e-5, rtol=0)

    rows = torch.tensor([2, 0, 4, 4])  # two beams per environment, reordered and duplicated
    cache.select(rows, extra_capacity=D)
    assert len(cache.segments) == (3 if goal_dim else 2), "context segments must stay shared"
    cache.expand(2, capacity=D)
    more = torch.randint(0, N_BINS, (8, 1))
    out = model.decode(cache, more)
    history = torch.cat([history[rows].repeat_interleave(2, dim=0), more], dim=1)
    torch.testing.assert_close(out[:, -1], model(history)[0][:, -1], atol=1e-5, rtol=0)

    cache.select(torch.tensor([1, 2, 7, 4]), extra_capacity=D)
    assert cache.rows == 4


def test_one_token_reads_a_nearly_full_segment_to_capacity_with_unwritten_keys_masked() -> None:
    model = make_model()
    D = model.layout.transition_dim
    torch.manual_seed(3)
    context = torch.randint(0, N_BINS, (1, D + 3))
    cache, _ = model.prefill(context)
    cache.expand(4, capacity=D)
    suffix = torch.randint(0, N_BINS, (4, D))
    model.decode(cache, suffix)
    rows = torch.tensor([3, 1, 1, 0])
    cache.select(rows, extra_capacity=2)  # a per-beam segment of D written keys and room for 2 more
    beams = cache.segments[-1]
    assert all(bool((t[:, :, beams.length :] == 0).all()) for t in beams.k + beams.v), "unwritten keys must be zero"
    bias = cache.attention_biases(1)[-1]
    assert bias.shape[-1] == beams.capacity, "one new token reads the nearly full segment to its capacity"
    assert torch.isinf(bias[beams.length + 1 :]).all() and not torch.isinf(bias[beams.length]), "only unwritten masked"
    assert cache.attention_biases(2)[-1].shape[-1] == beams.length + 2, "a block of new tokens reads what is written"

    more = torch.randint(0, N_BINS, (4, 1))
    out = model.decode(cache, more)
    history = torch.cat([context.repeat(4, 1), suffix], dim=1)[rows]
    expected = model(torch.cat([history, more], dim=1))[0][:, -1]
    torch.testing.assert_close(out[:, -1], expected, atol=1e-5, rtol=0)


def test_select_rejects_rows_that_mix_goals() -> None:
    model = make_model(goal_dim=2)
    cache, _ = model.prefill(torch.randint(0, N_BINS, (2, 6)))
    cache.expand(2, capacity=4)
    model.decode(cache, torch.zeros(4, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="children together"):
        cache.select(torch.tensor([3, 0]), extra_capacity=2)  # env 1's beam first, env 0's second
