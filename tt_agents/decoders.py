"""How the beam search runs the network: on the segmented cache, or on static shapes (optionally compiled).

A :class:`Decoder` starts from the environments' contexts, decodes one token per beam row at a time, and
follows the search's rows as beams are copied (:meth:`Decoder.expand`) and kept (:meth:`Decoder.select`).
Both decoders give the same logits for the same tokens (up to floating-point rounding), so the planner's
plans do not depend on which one runs.

- :class:`CachedDecoder` (the reference): the segmented :class:`~tt_agents.kv_cache.KVCache`, whose shapes
  grow with every token; the fewest operations, fastest where each kernel launch is cheap (CPUs).
- :class:`StaticDecoder`: a :class:`~tt_agents.static_cache.StaticKVCache` allocated once per search size,
  so every token runs the same shapes on the same memory; with ``compiled=True`` the step is compiled by
  ``torch.compile`` (``fullgraph``, and on CUDA replayed as a CUDA graph), once per row count.
"""

from __future__ import annotations

from typing import Protocol

import torch

from .kv_cache import KVCache, window_start
from .model import TrajectoryGPT
from .static_cache import StaticKVCache


class Decoder(Protocol):
    """Runs the network for the beam search, one token per row at a time."""

    def start(self, tokens: torch.Tensor, pads: torch.Tensor, maps: torch.Tensor | None = None) -> torch.Tensor:
        """Read the contexts ``tokens`` (E, T) (``pads`` (E,) leading placeholders; ``maps`` (E, H, W) for a
        network that reads a map); returns the logits (E, V) of the token after each context."""
        ...

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Append one token per row, ``tokens`` (R,); returns their next-token logits (R, V)."""
        ...

    def expand(self, children: int) -> None:
        """Give every row ``children`` copies (consecutive rows)."""
        ...

    def select(self, rows: torch.Tensor) -> None:
        """Keep the rows ``rows`` (R',) in that order (each environment's rows stay in its block)."""
        ...


class CachedDecoder:
    """The segmented cache: contexts shared, per-beam suffixes that grow token by token."""

    def __init__(self, model: TrajectoryGPT, keep_transitions: int) -> None:
        self.model = model
        self.keep_transitions = keep_transitions
        self.cache: KVCache | None = None

    def start(self, tokens: torch.Tensor, pads: torch.Tensor, maps: torch.Tensor | None = None) -> torch.Tensor:
        self.cache, logits = self.model.prefill(tokens, pad=pads if bool(pads.any()) else None, maps=maps)
        return logits[:, -1]

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.decode(self.cache, tokens[:, None], keep_transitions=self.keep_transitions)[:, -1]

    def expand(self, children: int) -> None:
        self.cache.expand(children, capacity=self.model.layout.action_dim + 1)

    def select(self, rows: torch.Tensor) -> None:
        self.cache.select(rows, extra_capacity=1 + self.model.layout.observation_dim)


class _StaticStep(torch.nn.Module):
    """The network and its static cache as one module, so that a compiled step sees the cache's buffers as
    fixed inputs (what replaying the step as a CUDA graph needs)."""

    def __init__(self, model: TrajectoryGPT, cache: StaticKVCache) -> None:
        super().__init__()
        self.model = model
        self.cache = cache

    def forward(self, tokens: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return self.model.decode_static(self.cache, tokens, index)


RECOMPILE_LIMIT = 64
"""Compiled steps allowed per process: two per (number of environments, search size). Every static decoder's step is
the same code, which torch's default limit (8) would cap at four such pairs."""


def _allow_recompiles() -> None:
    """Raise torch's limit of compiled versions of one function to :data:`RECOMPILE_LIMIT` (never lower it)."""
    config = torch._dynamo.config
    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    setattr(config, name, max(getattr(config, name), RECOMPILE_LIMIT))


class StaticDecoder:
    """Static-shape decoding: buffers allocated once for ``rows`` beam rows (per number of environments, kept),
    written in place; the window slides by recomputing it into the suffix.

    Args:
        model: the network.
        keep_transitions: transitions the window keeps when it slides (the one being decoded counts).
        rows_per_env: the most beam rows an environment has (beam width x expansions).
        compiled: compile the one-token step with ``torch.compile`` (``fullgraph=True``; on CUDA with
            ``mode="reduce-overhead"``, replayed as a CUDA graph). It compiles once per row count the search
            uses (two: all candidates, and the kept beams) and per number of environments.
    """

    def __init__(self, model: TrajectoryGPT, keep_transitions: int, rows_per_env: int, compiled: bool = False) -> None:
        self.model = model
        self.keep_transitions = keep_transitions
        self.rows_per_env = rows_per_env
        self.compiled = compiled
        self.cache: StaticKVCache | None = None
        self._step: torch.nn.Module | None = None
        self._made: dict[tuple[int, int], tuple[StaticKVCache, torch.nn.Module]] = {}  # per (envs, context length)
        self.rows = 0
        self._context: torch.Tensor | None = None  # (E, T) the context tokens, while the window holds them
        self._pads: torch.Tensor | None = None  # (E,) placeholder tokens still in each environment's window
        self._goal: torch.Tensor | None = None  # (E, g) each environment's goal prefix
        self._maps: torch.Tensor | None = None  # (E, H, W) each environment's map, for a network that reads one

    def _prepare(self, n_envs: int, context_length: int) -> StaticKVCache:
        """The buffers and step for this many environments and context tokens: made (and compiled) once, kept, so
        that acting in one environment between evaluations in several reuses both (and their CUDA graphs)."""
        key = (n_envs, context_length)
        if key not in self._made:
            cache = self.model.new_static_cache(n_envs, n_envs * self.rows_per_env, context_length)
            step = _StaticStep(self.model, cache)
            if self.compiled:
                _allow_recompiles()
                mode = "reduce-overhead" if cache.suffix_k.is_cuda else None
                step = torch.compile(step, fullgraph=True, dynamic=False, mode=mode)
            self._made[key] = cache, step
        self.cache, self._step = self._made[key]
        return self.cache

    def start(self, tokens: torch.Tensor, pads: torch.Tensor, maps: torch.Tensor | None = None) -> torch.Tensor:
        model = self.model
        E, T = tokens.shape
        cache = self._prepare(E, T)
        prefilled, logits = model.prefill(tokens, pad=pads if bool(pads.any()) else None, maps=maps)
        if prefilled.map_embedding is not None:
            cache.map_embedding.copy_(prefilled.map_embedding)
        self._maps = maps
        keys, values = prefilled.keys_values()
        cache.set_context(keys, values, model.key_bias(0, T, pads))
        cache.set_suffix_bias(model.key_bias(T, cache.suffix_capacity, pads), start=T, position_shift=pads)
        self.rows = E
        self._context, self._pads, self._goal = tokens, pads, tokens[:, : model.layout.goal_dim]
        return logits[:, -1]

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        cache, g = self.cache, self.model.layout.goal_dim
        in_window = (self._context.shape[1] if self._context is not None else g) + cache.suffix_length
        if in_window + 1 > self.model.block_size:
            return self._slide(tokens)
        logits = self._step(tokens, cache.key_positions[cache.suffix_length])  # the position as a 0-dim tensor
        cache.suffix_length += 1
        return logits.clone() if self.compiled else logits  # a replayed graph reuses its output's memory

    def expand(self, children: int) -> None:
        self.rows *= children
        self.cache.gather(torch.arange(self.rows, device=self.cache.suffix_k.device) // children)

    def select(self, rows: torch.Tensor) -> None:
        self.rows = rows.shape[0]
        self.cache.gather(rows)

    def _slide(self, tokens: torch.Tensor) -> torch.Tensor:
        """Append ``tokens`` (n,) after dropping the oldest transitions (as :meth:`TrajectoryGPT.decode` slides):
        the window is recomputed into the suffix and the context is read no more, but for the goal prefix."""
        model, cache = self.model, self.cache
        g, D = model.layout.goal_dim, model.layout.transition_dim
        n, group = tokens.shape[0], tokens.shape[0] // cache.n_envs
        parts = [cache.suffix_tokens[:n, : cache.suffix_length], tokens[:, None]]
        if self._context is not None:
            parts.insert(0, self._context[:, g:].repeat_interleave(group, dim=0))
        history = torch.cat(parts, dim=1)  # (n, transition tokens)
        start = window_start(history.shape[1], D, self.keep_transitions)
        pads = (self._pads - start).clamp_min(0)  # (E,)
        window = history[:, start:]
        goal = self._goal.repeat_interleave(group, dim=0)  # (n, g)
        row_pads = pads.repeat_interleave(group)
        maps = None if self._maps is None else self._maps.repeat_interleave(group, dim=0)
        prefilled, logits = model.prefill(
            torch.cat([goal, window], 1), pad=row_pads if bool(pads.any()) else None, maps=maps
        )
        keys, values = prefilled.keys_values(skip=g)
        cache.mask_context_from(g)
        cache.set_suffix(keys, values, window, model.key_bias(g, cache.suffix_capacity, pads), g, pads)
        self._context, self._pads = None, pads
        return logits[:, -1]
