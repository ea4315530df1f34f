"""The Trajectory GPT: a nanoGPT-style decoder over per-dimension transition tokens.

Tokens are slot-local bin indices in ``[0, n_bins)`` plus a stop token ``n_bins``; the slot of a position
(observation dimension i, action dimension j, reward, reward-to-go, or goal dimension k) is fixed by where
it stands in the sequence (see :meth:`TrajectoryGPT.slots`). The embedding table holds ``n_slots * n_bins + 1``
entries (token id offset by ``slot * n_bins``, one shared stop id) and each slot has its own output head over
``n_bins + 1`` classes, as in the authors' model (paper Appendix A).

Attention never looks at reward-to-go tokens (their key columns are masked for every query), so a value
placeholder in an acting context changes nothing downstream.

Incremental decoding keeps a :class:`KVCache` made of *segments*: the first segment holds rows shared by
many later rows (one context per environment), and each later segment holds ``factor`` rows per row of
the segment before it (beams, then beam expansions). Beam search therefore never copies the shared context,
and reordering beams moves only the planned suffix. When the window slides, beams that share their first
planned transitions recompute them once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .layout import TransitionLayout


def window_start(n_transition_tokens: int, transition_dim: int, keep_transitions: int) -> int:
    """Index of the first transition token kept when the context window slides.

    The window keeps the last ``keep_transitions`` transitions (the one being decoded counts), always
    starting at the first token of a transition.
    """
    n_started = -(-n_transition_tokens // transition_dim)  # transitions with at least one token
    return transition_dim * max(0, n_started - keep_transitions)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.attn_dropout = config.dropout if config.attention_dropout is None else config.attention_dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        shape = (B, T, self.n_head, C // self.n_head)
        return tuple(t.view(shape).transpose(1, 2) for t in (q, k, v))  # each (B, H, T, hd)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """Full-sequence attention. ``allowed``: (T, T) bool, True where a query may attend to a key."""
        B, T, C = x.shape
        q, k, v = self._qkv(x)
        dropout = self.attn_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout)  # (B, H, T, hd)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))

    def forward_cached(self, x: torch.Tensor, layer: int, cache: KVCache, biases: list[torch.Tensor]) -> torch.Tensor:
        """Attention of the new tokens ``x`` (R, n, C) over every cached segment plus themselves.

        ``biases[i]`` is segment i's additive key bias from :meth:`KVCache.attention_biases`; its last
        dimension is the number of the segment's keys to read.
        """
        R, n, C = x.shape
        q, k, v = self._qkv(x)  # (R, H, n, hd)
        last = cache.segments[-1]
        last.k[layer][:, :, last.length : last.length + n] = k
        last.v[layer][:, :, last.length : last.length + n] = v

        if len(cache.segments) == 1 and n > 1:  # a window of new tokens: one fused attention call
            length = biases[0].shape[-1]
            y = F.scaled_dot_product_attention(
                q, last.k[layer][:, :, :length], last.v[layer][:, :, :length], attn_mask=biases[0]
            )  # (R, H, n, hd)
            return self.c_proj(y.transpose(1, 2).reshape(R, n, C))

        # Several segments, or one new token per row: explicit scores. With one query per row the fused CPU
        # kernel (built for blocks of queries) measured up to twice as slow when the keys fit in the CPU's
        # cache, and no faster when they do not.
        q = q * (1.0 / math.sqrt(q.shape[-1]))
        scores, values = [], []
        for segment, bias in zip(cache.segments, biases, strict=True):
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
        return self.c_proj(y.transpose(1, 2).reshape(R, n, C))


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


class MLP(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), allowed)
        return x + self.mlp(self.ln_2(x))

    def forward_cached(self, x: torch.Tensor, layer: int, cache: KVCache, biases: list[torch.Tensor]) -> torch.Tensor:
        x = x + self.attn.forward_cached(self.ln_1(x), layer, cache, biases)
        return x + self.mlp(self.ln_2(x))


@dataclass
class _Segment:
    """Cached keys/values of ``rows`` rows; each row stands for ``R / rows`` consecutive rows of the batch."""

    k: list[torch.Tensor]  # per layer (rows, H, capacity, hd)
    v: list[torch.Tensor]
    tokens: torch.Tensor  # (rows, capacity) slot-local token ids
    start: int  # absolute position of the segment's first token
    key_bias: torch.Tensor  # (capacity,) or (rows, 1, 1, capacity): 0, or -inf for keys never attended to
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

    Created by :meth:`TrajectoryGPT.new_cache`; grown by :meth:`TrajectoryGPT.decode`; reshaped for beam
    search by :meth:`expand` and :meth:`select`; slid by :meth:`TrajectoryGPT.decode` with ``keep_transitions``.
    """

    model: TrajectoryGPT
    segments: list[_Segment] = field(default_factory=list)
    pad: torch.Tensor | None = None
    """(R,) leading pad tokens of each row's context (a multiple of transition_dim), or None for no padding.
    Pad tokens sit right after the goal prefix, are never attended to, and shift the row's positions."""
    max_pad: int = 0

    @property
    def rows(self) -> int:
        """Rows of the batch (the rows of the last segment)."""
        return self.segments[-1].rows

    @property
    def length(self) -> int:
        """Tokens in the window, goal prefix included."""
        last = self.segments[-1]
        return last.start + last.length

    def _new_segment(
        self, rows: int, capacity: int, start: int, pad: torch.Tensor | None = None, written: int = 0
    ) -> _Segment:
        """An empty segment; ``pad`` (rows,) gives its rows' pads when the rows are padded.

        Keys and values from position ``written`` on are zero (the caller fills the ones before): attention
        may read unwritten keys, masked (see :meth:`attention_biases`), and their values must be finite.
        """
        m = self.model
        ref = m.pos_emb
        hd = m.config.n_embd // m.config.n_head
        shape = (rows, m.config.n_head, capacity, hd)
        k = [torch.empty(shape, dtype=ref.dtype, device=ref.device) for _ in range(m.config.n_layer)]
        v = [torch.empty(shape, dtype=ref.dtype, device=ref.device) for _ in range(m.config.n_layer)]
        for t in k + v:
            t[:, :, written:].zero_()
        tokens = torch.empty((rows, capacity), dtype=torch.long, device=ref.device)
        key_bias = m.value_bias[start : start + capacity]  # (capacity,)
        g = m.layout.goal_dim
        if pad is not None and start < g + self.max_pad:
            absolute = torch.arange(start, start + capacity, device=ref.device)
            is_pad = (absolute >= g) & (absolute < g + pad[:, None])  # (rows, capacity)
            key_bias = (key_bias + torch.zeros_like(is_pad, dtype=ref.dtype).masked_fill(is_pad, float("-inf")))[
                :, None, None, :
            ]
        return _Segment(k, v, tokens, start, key_bias)

    def expand(self, factor: int, capacity: int) -> None:
        """Give every row ``factor`` children (consecutive rows) in a new empty segment of ``capacity`` tokens."""
        if self.pad is not None:
            self.pad = self.pad.repeat_interleave(factor)
        self.segments.append(self._new_segment(self.rows * factor, capacity, self.length, self.pad))

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
        if keep == 0 and self.model.layout.goal_dim:
            raise ValueError("KVCache.select: rows must keep each goal row's children together, in order")
        merged = self.segments[keep:]
        total = sum(s.length for s in merged)
        if self.pad is not None:
            self.pad = self.pad[rows]
        out = self._new_segment(n_new, total + extra_capacity, merged[0].start, self.pad, written=total)
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

    def transition_tokens(self) -> torch.Tensor:
        """Every row's tokens after the goal prefix: (R, length - goal_dim)."""
        R = self.rows
        parts = [s.tokens[:, : s.length].repeat_interleave(R // s.rows, dim=0) for s in self.segments]
        return torch.cat(parts, dim=1)[:, self.model.layout.goal_dim :]

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
                bias = bias + torch.zeros(future.shape, device=bias.device).masked_fill(future, float("-inf"))
            biases.append(bias)
        return biases

    def positions(self, n: int) -> torch.Tensor:
        """Position embeddings of ``n`` new tokens: (n, C), or (R, n, C) when rows are padded."""
        start = self.length
        pos_emb = self.model.pos_emb
        if self.pad is None or start + n <= self.model.layout.goal_dim:
            return pos_emb[start : start + n]
        absolute = torch.arange(start, start + n, device=pos_emb.device)
        g = self.model.layout.goal_dim
        return pos_emb[torch.where(absolute < g, absolute, absolute - self.pad[:, None])]


class TrajectoryGPT(nn.Module):
    """GPT over transition tokens with per-slot embeddings offsets and per-slot output heads."""

    def __init__(self, layout: TransitionLayout, n_bins: int, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.layout = layout
        self.n_bins = n_bins
        self.config = config or ModelConfig()
        c = self.config
        self.n_slots = layout.transition_dim + layout.goal_dim
        self.stop_token = n_bins
        self.block_size = layout.goal_dim + c.sequence_length * layout.transition_dim - 1
        self.tok_emb = nn.Embedding(self.n_slots * n_bins + 1, c.n_embd)
        self.pos_emb = nn.Parameter(torch.zeros(self.block_size, c.n_embd))
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList([Block(c) for _ in range(c.n_layer)])
        self.ln_f = nn.LayerNorm(c.n_embd)
        self.head = nn.Parameter(torch.empty(self.n_slots, c.n_embd, n_bins + 1))  # one linear map per slot
        slot_weight = torch.ones(self.n_slots)
        slot_weight[layout.action_slice] = c.action_weight
        slot_weight[layout.reward_index] = c.reward_weight
        slot_weight[layout.value_index] = c.value_weight
        slot_weight[layout.transition_dim :] = 0.0  # the goal is given, never predicted
        self.register_buffer("slot_weight", slot_weight, persistent=False)
        table = torch.arange(2 * self.block_size + 2)
        self.register_buffer("slot_table", self.slots(table), persistent=False)  # slot of each absolute position
        value_bias = torch.zeros(len(table)).masked_fill(self.is_value_position(table), float("-inf"))
        self.register_buffer("value_bias", value_bias, persistent=False)  # attention bias of each key position
        self.apply(self._init_weights)
        nn.init.normal_(self.head, mean=0.0, std=0.02)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    # ---- positions and slots -------------------------------------------------------------------------

    def slots(self, positions: torch.Tensor) -> torch.Tensor:
        """Slot of each absolute position: goal slots first, then transition slots repeating."""
        g, D = self.layout.goal_dim, self.layout.transition_dim
        return torch.where(positions < g, D + positions, (positions - g) % D)

    def slot_of(self, position: int) -> int:
        """Slot of one absolute position (a Python int: no device round trip)."""
        g, D = self.layout.goal_dim, self.layout.transition_dim
        return D + position if position < g else (position - g) % D

    def is_value_position(self, positions: torch.Tensor) -> torch.Tensor:
        g = self.layout.goal_dim
        return (positions >= g) & ((positions - g) % self.layout.transition_dim == self.layout.value_index)

    def _embed(self, tokens: torch.Tensor, slots: torch.Tensor, pos_emb: torch.Tensor) -> torch.Tensor:
        """tokens (B, T), slots (T,), position embeddings (T, C) or (B, T, C) -> (B, T, C)."""
        ids = torch.where(tokens == self.stop_token, self.n_slots * self.n_bins, tokens + slots * self.n_bins)
        return self.drop(self.tok_emb(ids) + pos_emb)

    def _logits(self, x: torch.Tensor, next_slots: torch.Tensor) -> torch.Tensor:
        """Per-slot heads: the output at a position predicts the next token, of slot ``next_slots`` (T,).

        (B, T, C) -> (B, T, V)."""
        weights = self.head[next_slots]  # (T, C, V)
        return torch.bmm(self.ln_f(x).transpose(0, 1), weights).transpose(0, 1)

    def attention_mask(self, length: int, device: torch.device | None = None) -> torch.Tensor:
        """(T, T) bool, True where attention is allowed: causal, and never to reward-to-go tokens."""
        positions = torch.arange(length, device=device)
        causal = torch.ones(length, length, dtype=torch.bool, device=device).tril()
        return causal & ~self.is_value_position(positions)[None, :]

    # ---- training --------------------------------------------------------------------------------------

    def forward(
        self,
        tokens: torch.Tensor,
        targets: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for the next token at every position, and the weighted cross-entropy when ``targets`` given.

        tokens: (B, T) slot-local ids starting at position 0 (the goal prefix, if any, then a transition).
        targets: (B, T) the tokens at positions 1..T; mask: (B, T) 1 where a target counts.
        Returns logits (B, T, n_bins + 1) and the loss: sum(weight * mask * CE) / sum(mask).
        """
        B, T = tokens.shape
        if T > self.block_size:
            raise ValueError(f"TrajectoryGPT: sequence of {T} tokens exceeds the block size {self.block_size}")
        positions = torch.arange(T, device=tokens.device)
        x = self._embed(tokens, self.slots(positions), self.pos_emb[:T])
        allowed = self.attention_mask(T, tokens.device)
        for block in self.blocks:
            x = block(x, allowed)
        logits = self._logits(x, self.slots(positions + 1))  # (B, T, V)
        if targets is None:
            return logits, None
        ce = F.cross_entropy(logits.reshape(B * T, -1).float(), targets.reshape(-1), reduction="none").view(B, T)
        weight = self.slot_weight[self.slots(positions + 1)]  # (T,)
        mask = torch.ones_like(ce) if mask is None else mask.to(ce.dtype)
        loss = (ce * weight * mask).sum() / mask.sum().clamp_min(1.0)
        return logits, loss

    # ---- incremental decoding ------------------------------------------------------------------------

    def new_cache(self) -> KVCache:
        """An empty cache; fill it with :meth:`prefill`."""
        return KVCache(self)

    @torch.no_grad()
    def prefill(
        self, tokens: torch.Tensor, pad: torch.Tensor | None = None, capacity: int | None = None
    ) -> tuple[KVCache, torch.Tensor]:
        """Start a cache from ``tokens`` (R, T): the goal prefix (if any), then transitions.

        ``pad`` (R,): rows whose context is shorter carry that many placeholder tokens right after the goal
        prefix (a multiple of transition_dim); they are never attended to and the row's logits equal those of
        its unpadded tokens. ``capacity``: tokens the transition segment can hold (default: the block).
        Returns (cache, logits (R, T, V)). The goal prefix gets a segment of its own so that sliding the
        window never recomputes it.
        """
        cache = self.new_cache()
        R, T = tokens.shape
        g = self.layout.goal_dim
        if pad is not None:
            if torch.any(pad % self.layout.transition_dim != 0):
                raise ValueError("TrajectoryGPT.prefill: pad must be a multiple of transition_dim")
            cache.pad = pad.to(device=tokens.device, dtype=torch.long)
            cache.max_pad = int(cache.pad.max())
        logits = []
        if g:
            cache.segments.append(cache._new_segment(R, g, 0))
            logits.append(self._decode(cache, tokens[:, :g]))
        cache.segments.append(cache._new_segment(R, capacity or self.block_size - g, g, cache.pad))
        if T > g:
            logits.append(self._decode(cache, tokens[:, g:]))
        return cache, torch.cat(logits, dim=1)

    @torch.no_grad()
    def decode(self, cache: KVCache, tokens: torch.Tensor, keep_transitions: int | None = None) -> torch.Tensor:
        """Append ``tokens`` (R, n) to every row of the cache; returns their next-token logits (R, n, V).

        When the window would outgrow the block, it slides: the oldest transitions are dropped so that the
        last ``keep_transitions`` remain (the one being decoded counts) and the window is recomputed. The
        uncached equivalent is a forward pass over the goal prefix plus
        ``transitions[window_start(len(transitions), transition_dim, keep_transitions):]``.
        """
        R, n = tokens.shape
        if R != cache.rows:
            raise ValueError(f"TrajectoryGPT.decode: {R} rows of tokens for a cache of {cache.rows} rows")
        if cache.length + n <= self.block_size:
            return self._decode(cache, tokens)
        if keep_transitions is None:
            raise ValueError(
                f"TrajectoryGPT.decode: {cache.length} + {n} tokens exceed the block size {self.block_size}; "
                "pass keep_transitions to slide the window"
            )
        g, D = self.layout.goal_dim, self.layout.transition_dim
        if keep_transitions * D > self.block_size - g:
            raise ValueError(f"TrajectoryGPT.decode: {keep_transitions} transitions do not fit the block")
        history = torch.cat([cache.transition_tokens(), tokens], dim=1)  # (R, L + n)
        start = window_start(history.shape[1], D, keep_transitions)
        if cache.pad is not None:
            cache.pad = (cache.pad - start).clamp_min(0)
        if not g:
            return self._recompute_shared(cache, history[:, start:], n)
        cache.segments = cache.segments[:1]
        cache.segments.append(cache._new_segment(R, self.block_size - g, g, cache.pad))
        return self._decode(cache, history[:, start:])[:, -n:]

    def _recompute_shared(self, cache: KVCache, window: torch.Tensor, n: int) -> torch.Tensor:
        """Refill a cache without a goal prefix with ``window`` (R, W); returns the logits (R, n, V) of its last
        ``n`` tokens.

        Rows whose windows start alike (beams with a common ancestor) compute that part once: the window is
        decoded one transition at a time, for the distinct prefixes only, and the cache rows are gathered
        from one stage to the next. The result equals one pass over the whole window.
        """
        R, W = window.shape
        D = self.layout.transition_dim
        ends = [*range(D, W - n + 1, D), W]  # the last stage holds the n tokens whose logits are returned
        keys = window if cache.pad is None else torch.cat([cache.pad[:, None], window], dim=1)
        extra = keys.shape[1] - W  # the pad column: rows with other pads never share
        stage = KVCache(self, max_pad=cache.max_pad)  # its pads follow its rows, set at the first stage
        rows = torch.arange(R, device=window.device)
        previous = None  # (R,) each row's prefix in the previous stage
        begin = 0
        for end in ends:
            _, inverse = torch.unique(keys[:, : extra + end], dim=0, return_inverse=True)  # (R,)
            n_distinct = int(inverse.max()) + 1
            first = torch.full((n_distinct,), R, device=window.device).scatter_reduce(0, inverse, rows, "amin")
            if previous is None:
                stage.pad = None if cache.pad is None else cache.pad[first]
                stage.segments = [stage._new_segment(n_distinct, W, 0, stage.pad)]
            else:
                stage.select(previous[first], extra_capacity=W - begin)
            logits = self._decode(stage, window[first, begin:end])  # (n_distinct, end - begin, V)
            previous, begin = inverse, end
        stage.select(previous, extra_capacity=self.block_size - W)
        cache.segments, cache.pad = stage.segments, stage.pad
        return logits[previous, -n:]

    def _decode(self, cache: KVCache, tokens: torch.Tensor) -> torch.Tensor:
        R, n = tokens.shape
        last = cache.segments[-1]
        if last.length + n > last.capacity:
            raise ValueError(f"TrajectoryGPT.decode: segment capacity {last.capacity} exceeded")
        start = cache.length
        x = self._embed(tokens, self.slot_table[start : start + n], cache.positions(n))  # (R, n, C)
        biases = cache.attention_biases(n)
        for layer, block in enumerate(self.blocks):
            x = block.forward_cached(x, layer, cache, biases)
        last.tokens[:, last.length : last.length + n] = tokens
        last.length += n
        if n == 1:  # one slot: one matrix product with that slot's head
            return self.ln_f(x) @ self.head[self.slot_of(start + 1)]  # (R, 1, V)
        return self._logits(x, self.slot_table[start + 1 : start + n + 1])
