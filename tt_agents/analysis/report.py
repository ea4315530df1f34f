"""One call that makes the analysis figures of a trained agent on one episode (what ``tt-agents analyze`` runs)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._io import write_atomic
from ..agent import TrajectoryTransformerAgent
from ..data_loading import Episode
from .attention import attention_maps, plot_attention
from .likelihood import oracle_log_likelihood, state_log_likelihood
from .rendering import image_strip, render_observations, save_gif, save_image
from .rollouts import sample_rollouts


def analyze_episode(
    agent: TrajectoryTransformerAgent,
    episode: Episode,
    out: str | os.PathLike[str],
    *,
    start: int = 0,
    horizon: int = 50,
    n_samples: int = 100,
    env_id: str | None = None,
    seed: int = 0,
) -> dict[str, Path]:
    """Write to folder ``out``: ``attention.png`` (the model's attention over the episode from ``start``),
    ``likelihood.png`` (the log-likelihood of the real states under ``n_samples`` rollouts of ``horizon`` steps
    with the recorded actions, beside the discrete oracle) and, given a MuJoCo locomotion ``env_id``,
    ``rollout.png`` / ``rollout.gif`` (real states above, one sampled rollout below). Returns the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    states = episode.observations  # (T, O), then the final observation where the episode has one
    if episode.final_observation is not None:
        states = np.concatenate([states, episode.final_observation[None]])
    horizon = min(horizon, len(states) - 1 - start)  # the rollouts are scored against the real states after start
    if horizon < 1:
        raise ValueError(
            f"analyze_episode: start {start} leaves no real state after it in a {len(episode)}-step episode"
        )
    maps, labels = attention_maps(agent, episode, start)
    paths = {"attention": plot_attention(maps, labels, out / "attention.png")}
    rollouts = sample_rollouts(agent, episode, start, horizon, n_samples, seed=seed)
    columns = agent.layout.observation_slice
    real = states[start + 1 : start + 1 + horizon]
    model = state_log_likelihood(rollouts.observation_tokens[:, 1:], real, agent.tokenizer, columns)
    oracle = oracle_log_likelihood(real, agent.tokenizer, columns)
    paths["likelihood"] = _plot_likelihood(model, oracle, out / "likelihood.png")
    if env_id is not None:
        sample = rollouts.observations[0]  # (H + 1, O)
        rows = [
            render_observations(env_id, states[start : start + 1 + horizon]),
            render_observations(env_id, sample),
        ]
        paths["rollout_strip"] = save_image(image_strip(rows, every=max(1, horizon // 8)), out / "rollout.png")
        paths["rollout_gif"] = save_gif(rows, out / "rollout.gif")
    return paths


def _plot_likelihood(model: np.ndarray, oracle: np.ndarray, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    steps = np.arange(1, len(model) + 1)
    ax.plot(steps, model, label="Trajectory Transformer")
    ax.plot(steps, oracle, "k--", label="discrete oracle")
    ax.set(xlabel="timestep", ylabel="log-likelihood of the real state", title="long-horizon prediction")
    ax.legend(fontsize=8)
    fig.tight_layout()
    write_atomic(out, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)
    return out
