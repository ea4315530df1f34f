"""Preallocated keys and values for static-shape beam-search decoding.

A :class:`StaticKVCache` holds one beam search's keys and values in buffers allocated once, at their final
size: each environment's context once (``context_*``, E rows) and each beam's planned suffix (``suffix_*``,
R rows, environment-major: env e owns rows ``[e * R / E, (e + 1) * R / E)`` of every active prefix). Decoding
one token writes at a suffix position given as a tensor, and reordering beams gathers rows within the same
buffers, so every decoded token runs the same shapes on the same memory: what compiling the step and
replaying it as a CUDA graph need. Keys that must not be read (reward-to-go, pads, positions not written yet)
are masked by additive biases, never by changing shapes.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class StaticKVCache(nn.Module):
    """Keys and values of a beam search over ``n_envs`` contexts and ``rows`` beams, in fixed buffers.

    Buffers (module buffers, so a compiled step sees them as fixed inputs):

    - ``context_k``/``context_v`` (L, E, H, Lc, hd) and ``context_bias`` (E, 1, 1, Lc): each environment's
      context (goal prefix and past transitions), 0 where a key may be read, -inf elsewhere;
    - ``suffix_k``/``suffix_v`` (L, R, H, Ls, hd), ``suffix_tokens`` (R, Ls) and ``suffix_bias`` (E, Ls): the
      planned tokens of each row (after a window slide, the whole window), masked like the context;
    - ``suffix_start`` (): absolute position of suffix index 0; ``position_shift`` (E,): pad tokens of each
      environment's context, by which its positions move back;
    - ``map_embedding`` (E, 1, C), for a network that reads a map: each environment's map embedding, added to
      its rows' new tokens (None otherwise).

    ``suffix_length`` (a Python int) counts the suffix tokens written.
    """

    def __init__(
        self,
        n_layer: int,
        n_head: int,
        head_dim: int,
        n_envs: int,
        rows: int,
        context_capacity: int,
        suffix_capacity: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        map_dim: int | None = None,
    ) -> None:
        super().__init__()
        if rows % n_envs:
            raise ValueError(f"StaticKVCache: {rows} rows do not split evenly over {n_envs} environments")
        self.n_envs = n_envs
        kv = {"dtype": dtype, "device": device}
        index = {"dtype": torch.long, "device": device}
        context_shape = (n_layer, n_envs, n_head, context_capacity, head_dim)
        suffix_shape = (n_layer, rows, n_head, suffix_capacity, head_dim)
        self.register_buffer("context_k", torch.zeros(context_shape, **kv), persistent=False)
        self.register_buffer("context_v", torch.zeros(context_shape, **kv), persistent=False)
        self.register_buffer("context_bias", torch.full((n_envs, 1, 1, context_capacity), -math.inf, **kv), False)
        self.register_buffer("suffix_k", torch.zeros(suffix_shape, **kv), persistent=False)
        self.register_buffer("suffix_v", torch.zeros(suffix_shape, **kv), persistent=False)
        self.register_buffer("suffix_bias", torch.zeros(n_envs, suffix_capacity, **kv), persistent=False)
        self.register_buffer("suffix_tokens", torch.zeros(rows, suffix_capacity, **index), persistent=False)
        self.register_buffer("suffix_start", torch.zeros((), **index), persistent=False)
        self.register_buffer("position_shift", torch.zeros(n_envs, **index), persistent=False)
        self.register_buffer("key_positions", torch.arange(suffix_capacity, device=device), persistent=False)
        map_embedding = None if map_dim is None else torch.zeros(n_envs, 1, map_dim, **kv)
        self.register_buffer("map_embedding", map_embedding, persistent=False)
        # index tensors for writes into the whole buffers (a write through a sliced view makes a compiled step copy
        # the slice and write it back)
        self.register_buffer("layer_ids", torch.arange(n_layer, device=device), persistent=False)
        self.register_buffer("row_ids", torch.arange(rows, device=device), persistent=False)
        self.register_buffer("head_ids", torch.arange(n_head, device=device), persistent=False)
        self.suffix_length = 0

    @property
    def context_capacity(self) -> int:
        return self.context_k.shape[3]

    @property
    def suffix_capacity(self) -> int:
        return self.suffix_k.shape[3]

    def set_context(self, keys: list[torch.Tensor], values: list[torch.Tensor], key_bias: torch.Tensor) -> None:
        """Start a search: per layer ``keys``/``values`` (E, H, T, hd) of the contexts, ``key_bias`` (E, T); the
        suffix is emptied."""
        T = key_bias.shape[1]
        if T > self.context_capacity:
            raise ValueError(f"StaticKVCache: a context of {T} tokens exceeds the capacity {self.context_capacity}")
        for layer, (k, v) in enumerate(zip(keys, values, strict=True)):
            self.context_k[layer, :, :, :T] = k
            self.context_v[layer, :, :, :T] = v
        self.context_bias.fill_(-math.inf)
        self.context_bias[:, 0, 0, :T] = key_bias
        self.suffix_length = 0

    def mask_context_from(self, position: int) -> None:
        """Stop reading context keys from ``position`` on (the window slid past them)."""
        self.context_bias[..., position:] = -math.inf

    def set_suffix(
        self,
        keys: list[torch.Tensor],
        values: list[torch.Tensor],
        tokens: torch.Tensor,
        key_bias: torch.Tensor,
        start: int,
        position_shift: torch.Tensor,
    ) -> None:
        """Fill the suffix of the first ``tokens.shape[0]`` rows: per layer ``keys``/``values`` (n, H, W, hd),
        ``tokens`` (n, W), ``key_bias`` (E, Ls) of every suffix position, the first at absolute position
        ``start``; positions of environment e move back by ``position_shift[e]``."""
        n, W = tokens.shape
        if W > self.suffix_capacity:
            raise ValueError(f"StaticKVCache: a window of {W} tokens exceeds the suffix's {self.suffix_capacity}")
        for layer, (k, v) in enumerate(zip(keys, values, strict=True)):
            self.suffix_k[layer, :n, :, :W] = k
            self.suffix_v[layer, :n, :, :W] = v
        self.suffix_tokens[:n, :W] = tokens
        self.set_suffix_bias(key_bias, start, position_shift)
        self.suffix_length = W

    def set_suffix_bias(self, key_bias: torch.Tensor, start: int, position_shift: torch.Tensor) -> None:
        """Key bias (1, Ls) or (E, Ls) of the suffix positions, the first at absolute position ``start``; positions
        of environment e move back by ``position_shift[e]`` (E,)."""
        self.suffix_bias.copy_(key_bias.expand_as(self.suffix_bias))
        self.suffix_start.fill_(start)
        self.position_shift.copy_(position_shift)

    def gather(self, rows: torch.Tensor) -> None:
        """Make the first ``len(rows)`` rows copies of the (current) rows ``rows``: beam selection and expansion."""
        n, L = rows.shape[0], self.suffix_length
        if L:
            self.suffix_k[:, :n, :, :L] = self.suffix_k[:, rows, :, :L]
            self.suffix_v[:, :n, :, :L] = self.suffix_v[:, rows, :, :L]
            self.suffix_tokens[:n, :L] = self.suffix_tokens[rows, :L]

    def step_bias(self, index: torch.Tensor) -> torch.Tensor:
        """(E, Ls) suffix key bias for a token written at ``index`` (): later positions are not written yet."""
        return self.suffix_bias.masked_fill(self.key_positions > index, -math.inf)

    def attend(
        self,
        layer: int,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        index: torch.Tensor,
        suffix_bias: torch.Tensor,
    ) -> torch.Tensor:
        """Write one new token's key and value per row at suffix position ``index`` () of ``layer`` and return its
        attention over the context and the suffix: q, k, v (n, H, 1, hd) -> (n, H, 1, hd) for the first n rows.

        The queries of an environment's rows are grouped against its context, which is read once per
        environment; ``suffix_bias`` is :meth:`step_bias`.
        """
        n, H, _, hd = q.shape
        E, Lc, Ls = self.n_envs, self.context_capacity, self.suffix_capacity
        group = n // E
        at = (self.layer_ids[layer : layer + 1], self.row_ids[:n, None], self.head_ids[None, :], index.view(1))
        self.suffix_k.index_put_(at, k[:, :, 0])  # k (n, H, 1, hd) at [layer, row, head, index]
        self.suffix_v.index_put_(at, v[:, :, 0])
        suffix_k, suffix_v = self.suffix_k[layer, :n], self.suffix_v[layer, :n]  # (n, H, Ls, hd)
        q = q * (1.0 / math.sqrt(hd))
        q_env = q.view(E, group, H, hd).transpose(1, 2)  # (E, H, group, hd)
        context_scores = (q_env @ self.context_k[layer].transpose(-1, -2)) + self.context_bias  # (E, H, group, Lc)
        suffix_scores = (q @ suffix_k.transpose(-1, -2)).view(E, group, H, Ls) + suffix_bias[:, None, None, :]
        scores = torch.cat([context_scores.transpose(1, 2), suffix_scores], dim=-1)  # (E, group, H, Lc + Ls)
        probs = torch.softmax(scores, dim=-1)
        context_probs = probs[..., :Lc].transpose(1, 2)  # (E, H, group, Lc)
        y_context = (context_probs @ self.context_v[layer]).transpose(1, 2).reshape(n, H, 1, hd)
        suffix_probs = probs[..., Lc:].reshape(n, H, 1, Ls)
        return y_context + suffix_probs @ suffix_v  # (n, H, 1, hd)

    def write_tokens(self, tokens: torch.Tensor, index: torch.Tensor) -> None:
        """Record ``tokens`` (n,) at suffix position ``index`` () of the first n rows."""
        self.suffix_tokens.index_put_((self.row_ids[: tokens.shape[0]], index.view(1)), tokens)
