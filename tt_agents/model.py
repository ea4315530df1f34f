"""The Trajectory GPT: a nanoGPT-style decoder over per-dimension transition tokens.

Tokens are slot-local bin indices in ``[0, n_bins)`` plus a stop token ``n_bins``; the slot of a position
(observation dimension i, action dimension j, reward, reward-to-go, or goal dimension k) is fixed by where
it stands in the sequence (see :meth:`TrajectoryGPT.slots`). The embedding table holds ``n_slots * n_bins + 1``
entries (token id offset by ``slot * n_bins``, one shared stop id) and each slot has its own output head over
``n_bins + 1`` classes, as in the authors' model (paper Appendix A).

Attention never looks at reward-to-go tokens (their key columns are masked for every query), so a value
placeholder in an acting context changes nothing downstream.

With ``ModelConfig.map_shape`` the network also reads a per-episode map of categorical cells (paper Appendix F):
a small convolutional network (:class:`MapEncoder`) embeds it once per row, and the embedding is added to every
token's embedding, like the position embedding.

Incremental decoding (:meth:`TrajectoryGPT.prefill`, :meth:`TrajectoryGPT.decode`) runs the network over a
:class:`~tt_agents.kv_cache.KVCache` built from the network's shapes; its logits equal those of the full
forward pass over the same window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .kv_cache import KVCache, pad_positions
from .layout import TransitionLayout
from .static_cache import StaticKVCache


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
        """Attention of the new tokens ``x`` (R, n, C) over the cache plus themselves (see :meth:`KVCache.attend`)."""
        R, n, C = x.shape
        q, k, v = self._qkv(x)  # (R, H, n, hd)
        y = cache.attend(layer, q, k, v, biases)  # (R, H, n, hd)
        return self.c_proj(y.transpose(1, 2).reshape(R, n, C))

    def forward_static(
        self, x: torch.Tensor, layer: int, cache: StaticKVCache, index: torch.Tensor, bias: torch.Tensor
    ) -> torch.Tensor:
        """Attention of one new token per row ``x`` (n, 1, C) over a :class:`StaticKVCache` and itself."""
        n, _, C = x.shape
        q, k, v = self._qkv(x)  # (n, H, 1, hd)
        y = cache.attend(layer, q, k, v, index, bias)  # (n, H, 1, hd)
        return self.c_proj(y.transpose(1, 2).reshape(n, 1, C))


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

    def forward_static(
        self, x: torch.Tensor, layer: int, cache: StaticKVCache, index: torch.Tensor, bias: torch.Tensor
    ) -> torch.Tensor:
        x = x + self.attn.forward_static(self.ln_1(x), layer, cache, index, bias)
        return x + self.mlp(self.ln_2(x))


class MapEncoder(nn.Module):
    """A map of categorical cells (B, H, W) -> one embedding per map (B, 1, C): an embedding per cell value, three
    3x3 convolutions (the first two of stride 2), and a linear map of the flattened features, which keeps where
    each wall and door is. GELU, not ReLU: with a ReLU before the projection every unit died early in training on
    MiniGrid, and the network then read the same embedding for every map."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        assert config.map_shape is not None
        h, w = config.map_shape
        self.cell_emb = nn.Embedding(config.map_classes, 16)
        self.conv = nn.Sequential(
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(32, 32, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.GELU(),
        )
        h4, w4 = (h + 3) // 4, (w + 3) // 4  # two stride-2 convolutions with padding 1
        self.proj = nn.Linear(32 * h4 * w4, config.n_embd)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        x = self.cell_emb(maps).permute(0, 3, 1, 2)  # (B, H, W) -> (B, 16, H, W)
        return self.proj(self.conv(x).flatten(1))[:, None]  # (B, 1, C)


class TrajectoryGPT(nn.Module):
    """GPT over transition tokens with per-slot embeddings offsets and per-slot output heads."""

    def __init__(
        self,
        layout: TransitionLayout,
        n_bins: int,
        config: ModelConfig | None = None,
        categorical_slots: Sequence[int] = (),
    ) -> None:
        """``categorical_slots``: the slots whose tokens are categories (the tokenizer's categorical columns);
        with ``ModelConfig.place_frequencies`` they keep their table rows while every other slot's bins are
        embedded by their place."""
        super().__init__()
        self.layout = layout
        self.n_bins = n_bins
        self.config = config or ModelConfig()
        c = self.config
        self.n_slots = layout.transition_dim + layout.goal_dim
        self.stop_token = n_bins
        self.block_size = layout.window_tokens(c.sequence_length) - 1  # the last token of a window is only a target
        self.tok_emb = nn.Embedding(self.n_slots * n_bins + 1, c.n_embd)
        self.pos_emb = nn.Parameter(torch.zeros(self.block_size, c.n_embd))
        self.ordinal_emb = nn.Parameter(torch.zeros(self.n_slots, c.n_embd)) if c.ordinal_embedding else None
        self.place_emb = self.slot_emb = None
        if c.place_frequencies:
            self.slot_emb = nn.Parameter(torch.empty(self.n_slots, c.n_embd))
            self.place_emb = nn.Parameter(torch.empty(self.n_slots, 2 * c.place_frequencies, c.n_embd))
            frequencies = torch.arange(1, c.place_frequencies + 1) * (math.pi / 2)  # (K,) angles per unit of place
            self.register_buffer("frequencies", frequencies, persistent=False)
            by_place = torch.ones(self.n_slots, dtype=torch.bool)
            by_place[list(categorical_slots)] = False
            self.register_buffer("by_place", by_place, persistent=False)  # (n_slots,) slots embedded by place
        self.drop = nn.Dropout(c.dropout)
        self.map_encoder = MapEncoder(c) if c.map_shape is not None else None
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
        for p in (self.slot_emb, self.place_emb):
            if p is not None:
                nn.init.normal_(p, mean=0.0, std=0.02)
        if self.map_encoder is not None:  # unit-scale cell features into the convolutions, not GPT's 0.02
            nn.init.normal_(self.map_encoder.cell_emb.weight, mean=0.0, std=1.0)
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

    def _embed(
        self, tokens: torch.Tensor, slots: torch.Tensor, pos_emb: torch.Tensor, map_emb: torch.Tensor | None = None
    ) -> torch.Tensor:
        """tokens (B, T), slots (T,), position embeddings (T, C) or (B, T, C), map embeddings (B, 1, C) -> (B, T, C)."""
        stop = tokens == self.stop_token
        ids = torch.where(stop, self.n_slots * self.n_bins, tokens + slots * self.n_bins)
        x = self.tok_emb(ids)  # (B, T, C)
        if self.place_emb is not None or self.ordinal_emb is not None:  # not for the paper's table alone
            place = ((2 * tokens + 1).to(x.dtype) / self.n_bins - 1).masked_fill(stop, 0.0)  # (B, T) in [-1, 1]
        if self.place_emb is not None:  # a smooth function of the place instead of a table row per bin
            angles = place[..., None] * self.frequencies  # (B, T, K)
            features = torch.cat([angles.sin(), angles.cos()], dim=-1)  # (B, T, 2K)
            by_place = self.slot_emb[slots] + torch.einsum("btf,tfc->btc", features, self.place_emb[slots])
            x = torch.where((self.by_place[slots] & ~stop)[..., None], by_place.to(x.dtype), x)
        x = x + pos_emb
        if self.ordinal_emb is not None:  # the bin's place along its slot's direction (0 for stop)
            x = x + place[..., None] * self.ordinal_emb[slots]
        return self.drop(x if map_emb is None else x + map_emb)

    def embed_maps(self, maps: torch.Tensor | None, rows: int, check_cells: bool = False) -> torch.Tensor | None:
        """The map embeddings (rows, 1, C) of ``maps`` (rows, H, W) integer cells, or None for a network without a
        map; a ValueError when a map is missing, unexpected or of the wrong shape (and with ``check_cells``, a
        cell out of range: a device sync, so training leaves it to the data's own check)."""
        if self.map_encoder is None:
            if maps is not None:
                raise ValueError("TrajectoryGPT: this network reads no map (ModelConfig.map_shape is None)")
            return None
        shape = (rows, *self.config.map_shape)
        if maps is None or tuple(maps.shape) != shape:
            got = "none" if maps is None else tuple(maps.shape)
            raise ValueError(f"TrajectoryGPT: this network reads a map per row, {shape}; got {got}")
        out_of_range = check_cells and bool(((maps < 0) | (maps >= self.config.map_classes)).any())
        if maps.dtype.is_floating_point or out_of_range:
            raise ValueError(f"TrajectoryGPT: map cells must be integers in [0, {self.config.map_classes})")
        return self.map_encoder(maps.long())

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
        maps: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for the next token at every position, and the weighted cross-entropy when ``targets`` given.

        tokens: (B, T) slot-local ids starting at position 0 (the goal prefix, if any, then a transition).
        targets: (B, T) the tokens at positions 1..T; mask: (B, T) 1 where a target counts.
        maps: (B, H, W) each row's map, for a network with ``map_shape``.
        Returns logits (B, T, n_bins + 1) and the loss: sum(weight * mask * CE) / sum(mask).
        """
        B, T = tokens.shape
        if T > self.block_size:
            raise ValueError(f"TrajectoryGPT: sequence of {T} tokens exceeds the block size {self.block_size}")
        positions = torch.arange(T, device=tokens.device)
        x = self._embed(tokens, self.slots(positions), self.pos_emb[:T], self.embed_maps(maps, B))
        allowed = self.attention_mask(T, tokens.device)
        for block in self.blocks:
            x = block(x, allowed)
        logits = self._logits(x, self.slots(positions + 1))  # (B, T, V)
        if targets is None:
            return logits, None
        ce = self._cross_entropy(logits, targets)  # (B, T)
        weight = self.slot_weight[self.slots(positions + 1)]  # (T,)
        mask = torch.ones_like(ce) if mask is None else mask.to(ce.dtype)
        loss = (ce * weight * mask).sum() / mask.sum().clamp_min(1.0)
        return logits, loss

    def _cross_entropy(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-token cross-entropy (B, T) of ``logits`` (B, T, V) against ``targets`` (B, T): against the exact
        token, or with ``config.target_smoothing`` > 0 against a Gaussian over the bins around it."""
        B, T, V = logits.shape
        sigma = self.config.target_smoothing
        if sigma == 0:
            return F.cross_entropy(logits.reshape(B * T, V).float(), targets.reshape(-1), reduction="none").view(B, T)
        bins = torch.arange(V, device=logits.device, dtype=torch.float32)  # (V,)
        soft = torch.exp(-0.5 * ((bins - targets[..., None].float()) / sigma) ** 2)  # (B, T, V)
        soft[..., self.stop_token] = 0.0
        soft = soft / soft.sum(-1, keepdim=True)
        soft = torch.where((targets == self.stop_token)[..., None], F.one_hot(targets, V).float(), soft)
        return -(soft * F.log_softmax(logits.float(), dim=-1)).sum(-1)

    @torch.no_grad()
    def attention_maps(self, tokens: torch.Tensor, maps: torch.Tensor | None = None) -> torch.Tensor:
        """Attention weights of a forward pass over ``tokens`` (B, T) (and ``maps``, as in :meth:`forward`):
        (n_layer, B, n_head, T, T), each row a query's distribution over the keys (zero where it may not attend)."""
        B, T = tokens.shape
        positions = torch.arange(T, device=tokens.device)
        x = self._embed(tokens, self.slots(positions), self.pos_emb[:T], self.embed_maps(maps, B))
        allowed = self.attention_mask(T, tokens.device)
        weights = []
        for block in self.blocks:
            q, k, _ = block.attn._qkv(block.ln_1(x))  # (B, H, T, hd) each
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])  # (B, H, T, T)
            weights.append(scores.masked_fill(~allowed, float("-inf")).softmax(-1))
            x = block(x, allowed)
        return torch.stack(weights)

    # ---- incremental decoding ------------------------------------------------------------------------

    def new_cache(self) -> KVCache:
        """An empty cache of this network's shapes; :meth:`prefill` starts a filled one."""
        c, lay = self.config, self.layout
        return KVCache(
            n_layer=c.n_layer,
            n_head=c.n_head,
            head_dim=c.n_embd // c.n_head,
            transition_dim=lay.transition_dim,
            key_bias=self.value_bias,
            goal_dim=lay.goal_dim,
            dtype=self.pos_emb.dtype,
        )

    def key_bias(self, start: int, length: int, pad: torch.Tensor | None = None) -> torch.Tensor:
        """(R, length) additive attention bias of the keys at absolute positions ``start`` to ``start + length``:
        -inf at reward-to-go positions and at each row's ``pad`` (R,) placeholder tokens after the goal prefix."""
        bias = self.value_bias[start : start + length]  # (length,)
        if pad is None:
            return bias[None]
        return bias.masked_fill(pad_positions(start, length, self.layout.goal_dim, pad), float("-inf"))

    def new_static_cache(self, n_envs: int, rows: int, context_capacity: int) -> StaticKVCache:
        """A :class:`StaticKVCache` of this network's shapes for ``n_envs`` contexts of up to ``context_capacity``
        tokens and ``rows`` beams whose suffix may hold a whole window."""
        c = self.config
        return StaticKVCache(
            n_layer=c.n_layer,
            n_head=c.n_head,
            head_dim=c.n_embd // c.n_head,
            n_envs=n_envs,
            rows=rows,
            context_capacity=context_capacity,
            suffix_capacity=self.block_size - self.layout.goal_dim,
            dtype=self.pos_emb.dtype,
            device=self.pos_emb.device,
            map_dim=None if self.map_encoder is None else c.n_embd,
        )

    @torch.no_grad()
    def decode_static(self, cache: StaticKVCache, tokens: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Decode one token per row: ``tokens`` (n,) written at suffix position ``index`` (a 0-dim tensor) of the
        first n rows of ``cache``; returns their next-token logits (n, V).

        Every call runs the same shapes for the same n, whatever the position, so the step compiles once and
        replays as a CUDA graph. The logits equal :meth:`decode`'s over the same window.
        """
        n = tokens.shape[0]
        position = (cache.suffix_start + index).view(1)  # (1,) absolute position of the new tokens
        shift = cache.position_shift.repeat_interleave(n // cache.n_envs)  # (n,)
        pos_emb = self.pos_emb[position - shift][:, None]  # (n, 1, C)
        map_emb = None if cache.map_embedding is None else cache.map_embedding.repeat_interleave(n // cache.n_envs, 0)
        x = self._embed(tokens[:, None], self.slot_table[position], pos_emb, map_emb)  # (n, 1, C)
        bias = cache.step_bias(index)  # (E, Ls)
        for layer, block in enumerate(self.blocks):
            x = block.forward_static(x, layer, cache, index, bias)
        cache.write_tokens(tokens, index)
        return (self.ln_f(x) @ self.head[self.slot_table[position + 1]])[:, 0]  # (n, 1, C) @ (1, C, V) -> (n, V)

    @torch.no_grad()
    def prefill(
        self,
        tokens: torch.Tensor,
        pad: torch.Tensor | None = None,
        capacity: int | None = None,
        maps: torch.Tensor | None = None,
    ) -> tuple[KVCache, torch.Tensor]:
        """Start a cache from ``tokens`` (R, T): the goal prefix (if any), then transitions.

        ``pad`` (R,): rows whose context is shorter carry that many placeholder tokens right after the goal
        prefix (a multiple of transition_dim); they are never attended to and the row's logits equal those of
        its unpadded tokens. ``capacity``: tokens the transition segment can hold (default: the block).
        ``maps`` (R, H, W): each row's map, for a network with ``map_shape``; every token decoded later in the
        row, and in the rows that descend from it, adds the row's map embedding.
        Returns (cache, logits (R, T, V)). The goal prefix gets a segment of its own so that sliding the
        window never recomputes it.
        """
        cache = self.new_cache()
        R, T = tokens.shape
        g = self.layout.goal_dim
        if pad is not None:
            cache.set_pad(pad.to(device=tokens.device, dtype=torch.long))
        map_emb = self.embed_maps(maps, R, check_cells=True)
        if map_emb is not None:
            cache.set_maps(map_emb)
        logits = []
        if g:
            cache.add_segment(R, g)
            logits.append(self._decode(cache, tokens[:, :g]))
        cache.add_segment(R, capacity or self.block_size - g)
        if T > g:
            logits.append(self._decode(cache, tokens[:, g:]))
        return cache, torch.cat(logits, dim=1)

    @torch.no_grad()
    def decode(self, cache: KVCache, tokens: torch.Tensor, keep_transitions: int | None = None) -> torch.Tensor:
        """Append ``tokens`` (R, n) to every row of the cache; returns their next-token logits (R, n, V).

        When the window would outgrow the block, it slides (:meth:`KVCache.slide`): the oldest transitions
        are dropped so that the last ``keep_transitions`` remain (the one being decoded counts) and the window
        is recomputed. The uncached equivalent is a forward pass over the goal prefix plus
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
        capacity = self.block_size - self.layout.goal_dim
        if keep_transitions * self.layout.transition_dim > capacity:
            raise ValueError(f"TrajectoryGPT.decode: {keep_transitions} transitions do not fit the block")
        return cache.slide(tokens, keep_transitions, capacity, self._decode)

    def _decode(self, cache: KVCache, tokens: torch.Tensor) -> torch.Tensor:
        """Run the network on ``tokens`` (R, n) over the cache and append them to it; returns logits (R, n, V)."""
        n = tokens.shape[1]
        if n > cache.room:
            raise ValueError(f"TrajectoryGPT.decode: {n} tokens exceed the room of the cache's segment ({cache.room})")
        start = cache.length
        pos_emb = self.pos_emb[cache.position_index(n)]
        x = self._embed(tokens, self.slot_table[start : start + n], pos_emb, cache.map_embedding)  # (R, n, C)
        biases = cache.attention_biases(n)
        for layer, block in enumerate(self.blocks):
            x = block.forward_cached(x, layer, cache, biases)
        cache.append(tokens)
        if n == 1:  # one slot: one matrix product with that slot's head
            return self.ln_f(x) @ self.head[self.slot_of(start + 1)]  # (R, 1, V)
        return self._logits(x, self.slot_table[start + 1 : start + n + 1])
