"""Fixed-length token windows over :class:`~tt_agents.data_loading.TrajectoryData` for training."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from .trajectories import TrajectoryData


class TokenizerLike(Protocol):
    """What :class:`WindowDataset` needs from a tokenizer (see :class:`tt_agents.tokenizer.Tokenizer`)."""

    @property
    def n_bins(self) -> int: ...

    def encode(self, x: np.ndarray, columns: slice | None = None) -> np.ndarray: ...


class WindowDataset(torch.utils.data.Dataset):
    """Token windows of ``sequence_length`` transitions, one starting at every step of every episode.

    Item ``i`` is ``(tokens, loss_mask)``, both of length ``G + L * D`` (goal tokens, then ``L`` transitions
    of ``D`` tokens each, row-major). Positions past the episode's end hold the stop token ``N``
    (``tokenizer.n_bins``): after a true terminal they are trained on (mask 1, the model learns the episode
    ends), after a time-limit truncation they are not (mask 0). Goal tokens have mask 0. The sequence is
    unshifted: the model takes ``tokens[:-1]`` as input and ``tokens[1:]`` (with ``mask[1:]``) as targets.

    All tokens are computed once here, so ``__getitem__`` only slices.
    """

    def __init__(self, data: TrajectoryData, tokenizer: TokenizerLike, sequence_length: int = 10) -> None:
        if sequence_length < 1:
            raise ValueError(f"sequence_length must be >= 1, got {sequence_length}")
        if data.n_episodes == 0:
            raise ValueError("WindowDataset: the data has no episodes")
        self.layout = data.layout
        self.sequence_length = sequence_length
        self.stop_token = int(tokenizer.n_bins)
        d, pad = self.layout.transition_dim, sequence_length - 1
        lengths = data.episode_lengths  # (E,)

        encoded = np.asarray(tokenizer.encode(np.concatenate(data.joined), columns=slice(0, d)))  # (sum T, D)
        tokens, masks, starts = [], [], []
        offset = 0
        for episode_tokens, terminated in zip(np.split(encoded, np.cumsum(lengths)[:-1]), data.terminated, strict=True):
            length = len(episode_tokens)
            padded = np.full((length + pad, d), self.stop_token, dtype=np.int32)  # (T + L - 1, D)
            padded[:length] = episode_tokens
            mask = np.zeros((length + pad, d), dtype=bool)  # (T + L - 1, D)
            mask[: length if not terminated else None] = True
            tokens.append(padded.reshape(-1))
            masks.append(mask.reshape(-1))
            starts.append(offset + np.arange(length) * d)
            offset += (length + pad) * d
        self._tokens = torch.from_numpy(np.concatenate(tokens))  # (sum (T + L - 1) * D,) int32
        self._mask = torch.from_numpy(np.concatenate(masks))  # (sum (T + L - 1) * D,) bool
        self._starts = torch.from_numpy(np.concatenate(starts))  # (n_windows,) flat offset of each window
        self._episode = torch.from_numpy(np.repeat(np.arange(data.n_episodes), lengths))  # (n_windows,)
        self._goal_tokens: torch.Tensor | None = None
        if self.layout.goal_dim > 0:
            if data.goals is None:
                raise ValueError("WindowDataset: the layout has goal columns but the data has no goals")
            goal_tokens = tokenizer.encode(np.stack(data.goals), columns=self.layout.goal_slice)  # (E, G)
            self._goal_tokens = torch.as_tensor(np.asarray(goal_tokens), dtype=torch.int64)
        self.map_per_step = data.map_per_step
        """Some episode's map changes through it: a window reads the map of its first step."""
        self._maps: torch.Tensor | None = None  # (M, H, W): each episode's one map, or its maps per step
        self._map_index: torch.Tensor | None = None  # (n_windows,) the map of each window: its first step's
        if data.maps is not None:
            if int(max(m.max() for m in data.maps)) > 255:
                raise ValueError("WindowDataset: map cells must be in [0, 255]")
            counts = np.array([len(m) if m.ndim == 3 else 1 for m in data.maps])  # maps held per episode
            first = np.cumsum(counts) - counts
            per_step = np.array([m.ndim == 3 for m in data.maps])
            steps = np.concatenate([np.arange(n) for n in lengths])  # (n_windows,) each window's first step
            episode = np.repeat(np.arange(data.n_episodes), lengths)
            self._maps = torch.as_tensor(
                np.concatenate([m.reshape(-1, *m.shape[-2:]) for m in data.maps]), dtype=torch.uint8
            )
            self._map_index = torch.as_tensor(first[episode] + np.where(per_step[episode], steps, 0))

    def to(self, device: torch.device | str) -> WindowDataset:
        """Keep the tokens on ``device`` (in place), so that :meth:`batch` gathers there; returns ``self``."""
        self._tokens, self._mask = self._tokens.to(device), self._mask.to(device)
        self._starts, self._episode = self._starts.to(device), self._episode.to(device)
        if self._goal_tokens is not None:
            self._goal_tokens = self._goal_tokens.to(device)
        if self._maps is not None and self._map_index is not None:  # set together
            self._maps, self._map_index = self._maps.to(device), self._map_index.to(device)
        return self

    def fingerprint_tensors(self) -> tuple[torch.Tensor, ...]:
        """The tensors that define these windows (tokens, loss mask, window starts, goals), for fingerprints."""
        goals = () if self._goal_tokens is None else (self._goal_tokens,)
        maps = () if self._maps is None else (self._maps,)
        if self.map_per_step:
            maps = (*maps, self._map_index)
        return (self._tokens, self._mask, self._starts, *goals, *maps)

    @property
    def sequence_tokens(self) -> int:
        """Tokens per item: ``goal_dim + sequence_length * transition_dim``."""
        return self.layout.window_tokens(self.sequence_length)

    def __len__(self) -> int:
        return len(self._starts)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        tokens, mask = self.batch(torch.tensor([i]))
        return tokens[0], mask[0]

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows ``indices`` (B,) at once: tokens (B, G + L * D) int64 and loss mask (B, G + L * D) float32, on the
        device the windows are kept on (see :meth:`to`)."""
        device = self._tokens.device
        indices = torch.as_tensor(indices, device=device)
        offsets = torch.arange(self.sequence_length * self.layout.transition_dim, device=device)  # (L * D,)
        flat = self._starts[indices][:, None] + offsets  # (B, L * D)
        tokens = self._tokens[flat].long()
        mask = self._mask[flat].float()
        if self._goal_tokens is not None:
            goal = self._goal_tokens[self._episode[indices]]  # (B, G)
            tokens = torch.cat([goal, tokens], dim=1)
            mask = torch.cat([torch.zeros(goal.shape, device=device), mask], dim=1)
        return tokens, mask

    def batch_maps(self, indices: torch.Tensor) -> torch.Tensor | None:
        """The maps (B, H, W) int64 of windows ``indices`` (B,), or None without maps: each window's episode's map,
        or where the maps change through an episode, the map of the window's first step (the step a plan starts
        from: see :attr:`~tt_agents.config.ModelConfig.map_per_step`)."""
        if self._maps is None or self._map_index is None:
            return None
        return self._maps[self._map_index[torch.as_tensor(indices, device=self._maps.device)]].long()
