"""Attention maps of the trained model over a trajectory (paper Figure 4), as arrays and as a plot."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .._io import write_atomic
from ..agent import TrajectoryTransformerAgent
from ..data_loading import Episode
from ..layout import TransitionLayout


def token_labels(layout: TransitionLayout, n_tokens: int) -> list[str]:
    """The kind and dimension of each of the first ``n_tokens`` positions of a window without goal: ``s0`` ...
    (observation dimensions), ``a0`` ... (actions), ``r`` (reward), ``V`` (reward-to-go)."""
    one = [f"s{i}" for i in range(layout.observation_dim)] + [f"a{j}" for j in range(layout.action_dim)] + ["r", "V"]
    return [one[p % layout.transition_dim] for p in range(n_tokens)]


@torch.no_grad()
def attention_maps(
    agent: TrajectoryTransformerAgent, episode: Episode, start: int = 0, n_transitions: int | None = None
) -> tuple[np.ndarray, list[str]]:
    """Attention weights (n_layer, n_head, T, T) of the model over ``n_transitions`` transitions of ``episode``
    from step ``start`` (default: as many as the model's window holds), and the label of each token."""
    model, tokenizer, lay = agent.model, agent.tokenizer, agent.layout
    if model is None or tokenizer is None:
        raise RuntimeError("attention_maps: the agent is not trained")
    if lay.goal_dim:
        raise ValueError("attention_maps: goal-conditioned agents are not supported")
    n = min(n_transitions or model.config.sequence_length, model.config.sequence_length, len(episode) - start)
    if n < 1:
        raise ValueError(f"attention_maps: no transition of the episode (length {len(episode)}) from step {start}")
    rows = np.zeros((n, lay.transition_dim))
    rows[:, lay.observation_slice] = episode.observations[start : start + n]
    rows[:, lay.action_slice] = episode.actions[start : start + n]
    rows[:, lay.reward_index] = episode.rewards[start : start + n]
    tokens = tokenizer.encode(rows[:, : lay.value_index], columns=slice(0, lay.value_index))  # (n, D - 1)
    tokens = np.concatenate([tokens, np.zeros((n, 1), dtype=tokens.dtype)], axis=1).reshape(-1)[:-1]  # V: unused
    device = next(model.parameters()).device
    grid = episode.map_at(start)
    grid = None if grid is None else torch.as_tensor(grid[None], device=device)  # (1, H, W)
    maps = model.attention_maps(torch.as_tensor(tokens[None], device=device), grid)[:, 0]  # (L, H, T, T)
    return maps.cpu().numpy(), token_labels(lay, len(tokens))


def plot_attention(
    maps: np.ndarray,
    labels: list[str],
    out: str | os.PathLike[str],
    drop_rewards: bool = True,
) -> Path:
    """Plot every layer's and head's map (rows: layers, columns: heads) to ``out``, queries down, keys across,
    ticks at each transition's first token; reward and reward-to-go tokens left out when ``drop_rewards`` (as the
    paper's Figure 4 does; reward-to-go keys are never attended anyway)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keep = [i for i, label in enumerate(labels) if not (drop_rewards and label in ("r", "V"))]
    maps = maps[:, :, keep][:, :, :, keep]
    kept = [labels[i] for i in keep]
    n_layer, n_head = maps.shape[:2]
    fig, axes = plt.subplots(n_layer, n_head, figsize=(2.6 * n_head, 2.6 * n_layer), squeeze=False)
    ticks = [i for i, label in enumerate(kept) if label == "s0"]
    for layer in range(n_layer):
        for head in range(n_head):
            ax = axes[layer][head]
            ax.imshow(maps[layer, head] ** 0.5, cmap="viridis", interpolation="nearest")  # sqrt: faint weights show
            ax.set_xticks(ticks, ["s0"] * len(ticks), fontsize=6)
            ax.set_yticks(ticks, ["s0"] * len(ticks), fontsize=6)
            ax.set_title(f"layer {layer}, head {head}", fontsize=8)
    fig.suptitle("attention (sqrt of the weights; rows: queries, columns: keys)", fontsize=9)
    fig.tight_layout()
    out = Path(out)
    write_atomic(out, lambda tmp: fig.savefig(tmp, dpi=120, format=out.suffix.lstrip(".") or "png"))
    plt.close(fig)
    return out
