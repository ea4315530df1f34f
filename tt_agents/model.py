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
and reordering beams moves only the planned suffix.
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
        self.attn_dropout = config.dropout
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

        ``biases``: per segment (n, L_s), 0 where allowed and -inf where masked (see :meth:`KVCache.biases`).
        """
        R, n, C = x.shape
        q, k, v = self._qkv(x)  # (R, H, n, hd)
        last = cache.segments[-1]
        last.k[layer][:, :, last.length : last.length + n] = k
        last.v[layer][:, :, last.length : last.length + n] = v
        scale = 1.0 / math.sqrt(q.shape[-1])

        scores, values = [], []
        for segment, bias in zip(cache.segments, biases, strict=True):
            length = segment.length + (n if segment is last else 0)
            keys = segment.k[layer][:, :, :length]  # (R_s, H, L_s, hd)
            group = R // segment.rows
            q_s = _group_rows(q, group)  # (R_s, H, group * n, hd)
            s = (q_s @ keys.transpose(-1, -2)) * scale  # (R_s, H, group * n, L_s)
            scores.append(_ungroup_rows(s, group, n) + bias)  # (R, H, n, L_s)
            values.append(segment.v[layer][:, :, :length])
        probs = torch.softmax(torch.cat(scores, dim=-1), dim=-1)  # (R, H, n, sum L_s)
        y = torch.zeros_like(q)
        start = 0
        for vals in values:
            length = vals.shape[2]
            group = R // vals.shape[0]
            p = _group_rows(probs[..., start : start + length], group)  # (R_s, H, group * n, L_s)
            y = y + _ungroup_rows(p @ vals, group, n)  # (R, H, n, hd)
            start += length
        y = y.transpose(1, 2).reshape(R, n, C)
        return self.c_proj(y)


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

    @property
    def rows(self) -> int:
        """Rows of the batch (the rows of the last segment)."""
        return self.segments[-1].rows

    @property
    def length(self) -> int:
        """Tokens in the window, goal prefix included."""
        last = self.segments[-1]
        return last.start + last.length

    def _new_segment(self, rows: int, capacity: int, start: int) -> _Segment:
        m = self.model
        ref = m.pos_emb
        hd = m.config.n_embd // m.config.n_head
        shape = (rows, m.config.n_head, capacity, hd)
        k = [torch.empty(shape, dtype=ref.dtype, device=ref.device) for _ in range(m.config.n_layer)]
        v = [torch.empty(shape, dtype=ref.dtype, device=ref.device) for _ in range(m.config.n_layer)]
        tokens = torch.empty((rows, capacity), dtype=torch.long, device=ref.device)
        return _Segment(k, v, tokens, start)

    def expand(self, factor: int, capacity: int) -> None:
        """Give every row ``factor`` children (consecutive rows) in a new empty segment of ``capacity`` tokens."""
        self.segments.append(self._new_segment(self.rows * factor, capacity, self.length))
        if self.pad is not None:
            self.pad = self.pad.repeat_interleave(factor)

    def select(self, rows: torch.Tensor, extra_capacity: int) -> None:
        """Keep the batch rows ``rows`` (R',) in that order, R' divisible by the first segment's rows.

        Segments whose rows are shared unchanged (the context) are kept as they are; the others are
        gathered and merged into one new segment with room for ``extra_capacity`` more tokens.
        """
        R = self.rows
        n_new = rows.shape[0]
        keep = 0
        while keep < len(self.segments):
            seg_rows = self.segments[keep].rows
            if seg_rows == R or n_new % seg_rows:
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
        out = self._new_segment(n_new, total + extra_capacity, merged[0].start)
        offset = 0
        for seg in merged:
            parent = rows // (R // seg.rows)  # (R',) row of this segment for each kept row
            span = slice(offset, offset + seg.length)
            for layer in range(len(seg.k)):
                out.k[layer][:, :, span] = seg.k[layer][parent, :, : seg.length]
                out.v[layer][:, :, span] = seg.v[layer][parent, :, : seg.length]
            out.tokens[:, span] = seg.tokens[parent, : seg.length]
            offset += seg.length
        out.length = total
        self.segments = self.segments[:keep] + [out]
        if self.pad is not None:
            self.pad = self.pad[rows]

    def transition_tokens(self) -> torch.Tensor:
        """Every row's tokens after the goal prefix: (R, length - goal_dim)."""
        R = self.rows
        parts = [s.tokens[:, : s.length].repeat_interleave(R // s.rows, dim=0) for s in self.segments]
        return torch.cat(parts, dim=1)[:, self.model.layout.goal_dim :]

    def positions(self, n: int) -> torch.Tensor:
        """Position-embedding indices of ``n`` new tokens: (n,), or (R, n) when rows are padded."""
        device = self.segments[-1].tokens.device
        absolute = torch.arange(self.length, self.length + n, device=device)
        if self.pad is None:
            return absolute
        g = self.model.layout.goal_dim
        return torch.where(absolute < g, absolute, absolute - self.pad[:, None])

    def biases(self, n: int) -> list[torch.Tensor]:
        """Additive attention biases of ``n`` new queries, per segment: (n, L_s), or (R, 1, n, L_s) when rows
        are padded; 0 where allowed, -inf where masked (reward-to-go keys, pad keys, future keys)."""
        biases = []
        last = self.segments[-1]
        g = self.model.layout.goal_dim
        for seg in self.segments:
            length = seg.length + (n if seg is last else 0)
            absolute = torch.arange(seg.start, seg.start + length, device=seg.tokens.device)
            masked = self.model.is_value_position(absolute).expand(n, length)
            if seg is last:
                masked = masked | torch.ones(n, length, dtype=torch.bool, device=absolute.device).triu(seg.length + 1)
            if self.pad is not None:
                is_pad = (absolute >= g) & (absolute < g + self.pad[:, None])  # (R, L_s)
                masked = masked | is_pad[:, None, None, :]
            biases.append(torch.zeros(masked.shape, device=absolute.device).masked_fill(masked, float("-inf")))
        return biases


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

    def is_value_position(self, positions: torch.Tensor) -> torch.Tensor:
        g = self.layout.goal_dim
        return (positions >= g) & ((positions - g) % self.layout.transition_dim == self.layout.value_index)

    def _embed(self, tokens: torch.Tensor, slots: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """tokens (B, T), slots (T,), positions (T,) or (B, T) -> (B, T, C)."""
        ids = torch.where(tokens == self.stop_token, self.n_slots * self.n_bins, tokens + slots * self.n_bins)
        return self.drop(self.tok_emb(ids) + self.pos_emb[positions])

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
        x = self._embed(tokens, self.slots(positions), positions)
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
        logits = []
        if g:
            cache.segments.append(cache._new_segment(R, g, 0))
            logits.append(self._decode(cache, tokens[:, :g]))
        cache.segments.append(cache._new_segment(R, capacity or self.block_size - g, g))
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
        cache.segments = cache.segments[:1] if g else []
        cache.segments.append(cache._new_segment(R, self.block_size - g, g))
        return self._decode(cache, history[:, start:])[:, -n:]

    def _decode(self, cache: KVCache, tokens: torch.Tensor) -> torch.Tensor:
        R, n = tokens.shape
        last = cache.segments[-1]
        if last.length + n > last.capacity:
            raise ValueError(f"TrajectoryGPT.decode: segment capacity {last.capacity} exceeded")
        absolute = torch.arange(cache.length, cache.length + n, device=tokens.device)
        x = self._embed(tokens, self.slots(absolute), cache.positions(n))  # (R, n, C)
        biases = cache.biases(n)
        for layer, block in enumerate(self.blocks):
            x = block.forward_cached(x, layer, cache, biases)
        last.tokens[:, last.length : last.length + n] = tokens
        last.length += n
        return self._logits(x, self.slots(absolute + 1))
