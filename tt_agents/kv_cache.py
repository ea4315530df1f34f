"""The key/value cache of incremental decoding, built from shapes alone.

A :class:`KVCache` is a list of *segments*: the first segment holds rows shared by many later rows (one
context per environment), and each later segment holds ``factor`` rows per row of the segment before it
(beams, then beam expansions). Beam search therefore never copies the shared context, and reordering beams
moves only the planned suffix. Attention over the cache (:meth:`KVCache.attend`) groups the queries of all
rows that share a segment row, so a shared row is read once, not once per row that shares it.

When the window slides (:meth:`KVCache.slide`), beams that share their first planned transitions recompute
them once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

DecodeStep = Callable[["KVCache", torch.Tensor], torch.Tensor]
"""Runs the network on new tokens (R, n) over a cache, appending them to it; returns their logits (R, n, V)."""


def window_start(n_transition_tokens: int, transition_dim: int, keep_transitions: int) -> int:
    """Index of the first transition token kept when the context window slides.

    The window keeps the last ``keep_transitions`` transitions (the one being decoded counts), always
    starting at the first token of a transition.
    """
    n_started = -(-n_transition_tokens // transition_dim)  # transitions with at least one token
    return transition_dim * max(0, n_started - keep_transitions)


def pad_positions(start: int, length: int, goal_dim: int, pad: torch.Tensor) -> torch.Tensor:
    """(R, length) bool: which of the absolute positions ``start`` to ``start + length`` hold each row's ``pad`` (R,)
    placeholder tokens, which follow the goal prefix."""
    positions = torch.arange(start, start + length, device=pad.device)
    return (positions >= goal_dim) & (positions < goal_dim + pad[:, None])


def _group_rows(t: torch.Tensor, group: int) -> torch.Tensor:
    """(R, H, n, X) -> (R / group, H, group * n, X): consecutive rows that share a parent side by side."""
    if group == 1:
        return t
    R, H, n, X = t.shape
    return t.view(R // group, group, H, n, X).transpose(1, 2).reshape(R // group, H, group * n, X)


def _ungroup_rows(t: torch.Tensor, group: int, n: int) -> torch.Tensor:
    """Inverse of :func:`_group_rows`: (R / group, H, group * n, X) -> (R, H, n, X)."""
    if group == 1:
        return t
    Rs, H, _, X = t.shape
    return t.view(Rs, H, group, n, X).transpose(1, 2).reshape(Rs * group, H, n, X)


@dataclass
class Segment:
    """Cached keys/values of ``rows`` rows; each row stands for ``R / rows`` consecutive rows of the batch."""

    k: list[torch.Tensor]  # per layer (rows, H, capacity, hd)
    v: list[torch.Tensor]
    tokens: torch.Tensor  # (rows, capacity) slot-local token ids
    start: int  # absolute position of the segment's first token
    key_bias: torch.Tensor  # (capacity,) or (rows, 1, 1, capacity): the cache's key_bias at these positions, pads -inf
    length: int = 0

    @property
    def rows(self) -> int:
        return self.tokens.shape[0]

    @property
    def capacity(self) -> int:
        return self.tokens.shape[1]


@dataclass
class KVCache:
    """Keys and values of everything decoded so far, as a list of segments (see the module docstring).

    Built from the network's shapes; :meth:`add_segment` opens room for new tokens, :meth:`attend` writes
    and reads them, :meth:`expand` and :meth:`select` reshape the rows for beam search and :meth:`slide`
    slides the window.
    """

    n_layer: int
    n_head: int
    head_dim: int
    transition_dim: int
    """Tokens of one transition: pads and the sliding window move by whole transitions."""
    key_bias: torch.Tensor
    """(P,) additive attention bias of each absolute key position: 0, or -inf for keys never attended to
    (reward-to-go). Its device is the cache's; P bounds the positions a segment may cover."""
    goal_dim: int = 0
    """Tokens of the goal prefix at the start of every row (0 without goals)."""
    dtype: torch.dtype = torch.float32
    segments: list[Segment] = field(default_factory=list)
    pad: torch.Tensor | None = None
    """(R,) leading pad tokens of each row's context (a multiple of transition_dim), or None for no padding.
    Pad tokens sit right after the goal prefix, are never attended to, and shift the row's positions."""
    max_pad: int = 0
    """An upper bound of ``pad``: segments that start at or after ``goal_dim + max_pad`` hold no pads."""
    map_embedding: torch.Tensor | None = None
    """(R, 1, C) the map embedding each row adds to its new tokens' embeddings, or None for a network without a
    map. Like ``pad`` it follows the rows through expansions and selections."""
    map_id: torch.Tensor | None = None
    """(R,) which prefilled row's map each row has: rows with different maps never share a slide's recompute."""

    @property
    def device(self) -> torch.device:
        """Where the keys and values live: the device of ``key_bias``."""
        return self.key_bias.device

    @property
    def rows(self) -> int:
        """Rows of the batch (the rows of the last segment)."""
        return self.segments[-1].rows

    @property
    def length(self) -> int:
        """Tokens in the window, goal prefix included."""
        if not self.segments:
            return 0
        last = self.segments[-1]
        return last.start + last.length

    @property
    def room(self) -> int:
        """Tokens the last segment can still take."""
        last = self.segments[-1]
        return last.capacity - last.length

    def set_pad(self, pad: torch.Tensor) -> None:
        """Give the rows ``pad`` (R,) leading placeholder tokens each, before any segment holds them."""
        if torch.any(pad % self.transition_dim != 0):
            raise ValueError(f"KVCache.set_pad: pad must be a multiple of transition_dim ({self.transition_dim})")
        self.pad = pad
        self.max_pad = int(pad.max())

    def set_maps(self, embedding: torch.Tensor) -> None:
        """Give the rows their map embeddings (R, 1, C), before any segment holds them."""
        self.map_embedding = embedding
        self.map_id = torch.arange(embedding.shape[0], device=embedding.device)

    def add_segment(self, rows: int, capacity: int) -> Segment:
        """Append and return an empty segment of ``rows`` rows and room for ``capacity`` tokens, starting where
        the window ends. In a cache with segments, ``rows`` is a multiple of the last segment's rows: each row
        gets ``rows / last.rows`` children, consecutive."""
        segment = self._empty_segment(rows, capacity, self.length)
        self.segments.append(segment)
        return segment

    def _empty_segment(self, rows: int, capacity: int, start: int, written: int = 0) -> Segment:
        """An empty segment whose rows have the cache's pads.

        Keys and values from position ``written`` on are zero (the caller fills the ones before): attention
        may read unwritten keys, masked (see :meth:`attention_biases`), and their values must be finite.
        """
        shape = (rows, self.n_head, capacity, self.head_dim)
        k = [torch.empty(shape, dtype=self.dtype, device=self.device) for _ in range(self.n_layer)]
        v = [torch.empty(shape, dtype=self.dtype, device=self.device) for _ in range(self.n_layer)]
        for t in k + v:
            t[:, :, written:].zero_()
        tokens = torch.empty((rows, capacity), dtype=torch.long, device=self.device)
        key_bias = self.key_bias[start : start + capacity]  # (capacity,)
        g = self.goal_dim
        if self.pad is not None and start < g + self.max_pad and start + capacity > g:
            is_pad = pad_positions(start, capacity, g, self.pad)  # (rows, capacity)
            key_bias = (key_bias + torch.zeros_like(is_pad, dtype=self.dtype).masked_fill(is_pad, float("-inf")))[
                :, None, None, :
            ]
        return Segment(k, v, tokens, start, key_bias)

    def expand(self, factor: int, capacity: int) -> None:
        """Give every row ``factor`` children (consecutive rows) in a new empty segment of ``capacity`` tokens."""
        if self.pad is not None:
            self.pad = self.pad.repeat_interleave(factor)
        if self.map_embedding is not None:
            self.map_embedding = self.map_embedding.repeat_interleave(factor, 0)
            self.map_id = self.map_id.repeat_interleave(factor)
        self.add_segment(self.rows * factor, capacity)

    def select(self, rows: torch.Tensor, extra_capacity: int) -> None:
        """Keep the batch rows ``rows`` (R',) in that order, R' divisible by the first segment's rows.

        Segments whose rows are shared unchanged (the context) are kept as they are; the others are
        gathered and merged into one new segment with room for ``extra_capacity`` more tokens.
        """
        R = self.rows
        n_new = rows.shape[0]
        keep = 0
        while keep < len(self.segments) - 1:  # the last segment is always gathered
            seg_rows = self.segments[keep].rows
            if n_new % seg_rows:
                break
            parent = rows // (R // seg_rows)
            expected = torch.arange(n_new, device=rows.device) // (n_new // seg_rows)
            if not torch.equal(parent, expected):
                break
            keep += 1
        if keep == 0 and self.goal_dim:
            raise ValueError("KVCache.select: rows must keep each goal row's children together, in order")
        merged = self.segments[keep:]
        total = sum(s.length for s in merged)
        if self.pad is not None:
            self.pad = self.pad[rows]
        if self.map_embedding is not None:
            self.map_embedding, self.map_id = self.map_embedding[rows], self.map_id[rows]
        out = self._empty_segment(n_new, total + extra_capacity, merged[0].start, written=total)
        offset = 0
        for seg in merged:
            parent = rows // (R // seg.rows)  # (R',) row of this segment for each kept row
            span = slice(offset, offset + seg.length)
            for layer in range(len(seg.k)):  # index_select into a view: one pass (indexing + copy is two)
                torch.index_select(seg.k[layer][:, :, : seg.length], 0, parent, out=out.k[layer][:, :, span])
                torch.index_select(seg.v[layer][:, :, : seg.length], 0, parent, out=out.v[layer][:, :, span])
            out.tokens[:, span] = seg.tokens[parent, : seg.length]
            offset += seg.length
        out.length = total
        self.segments = self.segments[:keep] + [out]

    def keys_values(self, skip: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per layer, every row's keys and values (R, H, length - skip, hd), segments side by side, the first
        ``skip`` positions of the window left out."""
        R = self.rows
        keys, values = [], []
        for layer in range(self.n_layer):
            k = [s.k[layer][:, :, : s.length].repeat_interleave(R // s.rows, 0) for s in self.segments]
            v = [s.v[layer][:, :, : s.length].repeat_interleave(R // s.rows, 0) for s in self.segments]
            keys.append(torch.cat(k, dim=2)[:, :, skip:])
            values.append(torch.cat(v, dim=2)[:, :, skip:])
        return keys, values

    def transition_tokens(self) -> torch.Tensor:
        """Every row's tokens after the goal prefix: (R, length - goal_dim)."""
        R = self.rows
        parts = [s.tokens[:, : s.length].repeat_interleave(R // s.rows, dim=0) for s in self.segments]
        return torch.cat(parts, dim=1)[:, self.goal_dim :]

    def position_index(self, n: int) -> slice | torch.Tensor:
        """Index into the position embeddings of ``n`` new tokens: a slice, or (R, n) positions when rows are
        padded (a pad shifts its row's positions back)."""
        start = self.length
        if self.pad is None or start + n <= self.goal_dim:
            return slice(start, start + n)
        absolute = torch.arange(start, start + n, device=self.device)
        g = self.goal_dim
        return torch.where(absolute < g, absolute, absolute - self.pad[:, None])

    def attention_biases(self, n: int) -> list[torch.Tensor]:
        """Per segment, the additive bias of the keys that ``n`` new tokens attend to: 0, or -inf for
        reward-to-go keys, pads, unwritten keys and (when n > 1) the new tokens' future.

        Its last dimension is the number of keys read: the written ones, or, for one new token, the whole
        capacity when that reads fewer bytes. A matrix product over a slice of the cache first copies the
        slice, which costs more than scoring a few masked zero keys: (capacity - written) * queries <= written.
        """
        last = self.segments[-1]
        biases = []
        for segment in self.segments:
            written = segment.length + (n if segment is last else 0)
            queries = self.rows // segment.rows * n
            whole = n == 1 and (segment.capacity - written) * queries <= written
            bias = segment.key_bias[..., : segment.capacity if whole else written]
            if whole and written < segment.capacity:
                bias = bias.clone()
                bias[..., written:] = float("-inf")
            if segment is last and n > 1:  # new token i may not see new tokens after it
                future = torch.ones(n, written, dtype=torch.bool, device=bias.device).triu(segment.length + 1)
                bias = bias + bias.new_zeros(future.shape).masked_fill(future, float("-inf"))
            biases.append(bias)
        return biases

    def attend(
        self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, biases: list[torch.Tensor]
    ) -> torch.Tensor:
        """Write the new tokens' keys and values of ``layer`` into the last segment and return their attention
        over every segment: q, k, v (R, H, n, hd) -> (R, H, n, hd).

        ``biases[i]`` is segment i's additive key bias from :meth:`attention_biases`; its last dimension is
        the number of the segment's keys to read. The caller moves the segment's length on once every layer
        is written.
        """
        R, _, n, _ = q.shape
        last = self.segments[-1]
        last.k[layer][:, :, last.length : last.length + n] = k
        last.v[layer][:, :, last.length : last.length + n] = v

        if len(self.segments) == 1 and n > 1:  # a window of new tokens: one fused attention call
            length = biases[0].shape[-1]
            return F.scaled_dot_product_attention(
                q, last.k[layer][:, :, :length], last.v[layer][:, :, :length], attn_mask=biases[0]
            )  # (R, H, n, hd)

        # Several segments, or one new token per row: explicit scores. With one query per row the fused CPU
        # kernel (built for blocks of queries) measured up to twice as slow when the keys fit in the CPU's
        # cache, and no faster when they do not.
        q = q * (1.0 / math.sqrt(q.shape[-1]))
        scores, values = [], []
        for segment, bias in zip(self.segments, biases, strict=True):
            length = bias.shape[-1]
            group = R // segment.rows
            keys = segment.k[layer][:, :, :length]  # (R_s, H, L_s, hd)
            s = torch.matmul(_group_rows(q, group), keys.transpose(-1, -2)).add_(bias)  # (R_s, H, group * n, L_s)
            scores.append(_ungroup_rows(s, group, n))  # (R, H, n, L_s)
            values.append(segment.v[layer][:, :, :length])
        probs = torch.softmax(torch.cat(scores, dim=-1), dim=-1)  # (R, H, n, sum L_s)
        y = None
        start = 0
        for vals in values:
            length = vals.shape[2]
            group = R // vals.shape[0]
            p = _group_rows(probs[..., start : start + length], group)  # (R_s, H, group * n, L_s)
            part = _ungroup_rows(p @ vals, group, n)  # (R, H, n, hd)
            y = part if y is None else y + part
            start += length
        return y

    def append(self, tokens: torch.Tensor) -> None:
        """Record ``tokens`` (R, n), whose keys and values :meth:`attend` has written, in the last segment."""
        last = self.segments[-1]
        n = tokens.shape[1]
        last.tokens[:, last.length : last.length + n] = tokens
        last.length += n

    # ---- sliding the window ----------------------------------------------------------------------------

    def slide(self, tokens: torch.Tensor, keep_transitions: int, capacity: int, step: DecodeStep) -> torch.Tensor:
        """Append ``tokens`` (R, n) after dropping the oldest transitions, so that the last ``keep_transitions``
        remain (the one being decoded counts), and recompute the window with ``step``; returns the logits
        (R, n, V) of ``tokens``. ``capacity``: tokens the new transition segment can hold.

        The window is every row's transition tokens plus ``tokens`` from :func:`window_start` on. Without a
        goal prefix, rows whose windows start alike (beams with a common ancestor) compute that part once
        (:meth:`_refill_shared`); a goal-conditioned cache recomputes the whole window, since its goal segment
        needs the same number of rows after it for every goal row.
        """
        n = tokens.shape[1]
        history = torch.cat([self.transition_tokens(), tokens], dim=1)  # (R, L + n)
        start = window_start(history.shape[1], self.transition_dim, keep_transitions)
        if self.pad is not None:
            self.pad = (self.pad - start).clamp_min(0)
        if not self.goal_dim:
            return self._refill_shared(history[:, start:], n, capacity, step)
        self.segments = self.segments[:1]
        self.add_segment(history.shape[0], capacity)
        return step(self, history[:, start:])[:, -n:]

    def _refill_shared(self, window: torch.Tensor, n: int, capacity: int, step: DecodeStep) -> torch.Tensor:
        """Refill a cache without a goal prefix with ``window`` (R, W); returns the logits (R, n, V) of its last
        ``n`` tokens.

        Rows whose windows start alike compute that part once: the window is decoded one transition at a
        time, for the distinct prefixes only, and the cache rows are gathered from one stage to the next. The
        result equals one pass over the whole window.
        """
        R, W = window.shape
        D = self.transition_dim
        ends = [*range(D, W - n + 1, D), W]  # the last stage holds the n tokens whose logits are returned
        row_columns = [c[:, None] for c in (self.pad, self.map_id) if c is not None]
        keys = torch.cat([*row_columns, window], dim=1)
        extra = keys.shape[1] - W  # the pad and map columns: rows with other pads or maps never share
        stage = replace(self, segments=[])  # its pads and maps follow its rows, set at the first stage
        rows = torch.arange(R, device=window.device)
        previous = None  # (R,) each row's prefix in the previous stage
        begin = 0
        for end in ends:
            _, inverse = torch.unique(keys[:, : extra + end], dim=0, return_inverse=True)  # (R,)
            n_distinct = int(inverse.max()) + 1
            first = torch.full((n_distinct,), R, device=window.device).scatter_reduce(0, inverse, rows, "amin")
            if previous is None:
                stage.pad = None if self.pad is None else self.pad[first]
                if self.map_embedding is not None:
                    stage.map_embedding, stage.map_id = self.map_embedding[first], self.map_id[first]
                stage.add_segment(n_distinct, W)
            else:
                stage.select(previous[first], extra_capacity=W - begin)
            logits = step(stage, window[first, begin:end])  # (n_distinct, end - begin, V)
            previous, begin = inverse, end
        stage.select(previous, extra_capacity=capacity - W)
        self.segments, self.pad = stage.segments, stage.pad
        self.map_embedding, self.map_id = stage.map_embedding, stage.map_id
        return logits[previous, -n:]
