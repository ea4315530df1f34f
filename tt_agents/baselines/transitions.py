"""The per-step arrays the baselines train on, joined from episodes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..data_loading import Episode


@dataclass
class Transitions:
    """Per-step arrays of a set of episodes (what the baselines train on)."""

    observations: np.ndarray
    """(N, O) float32."""
    actions: np.ndarray
    """(N, A) float32."""
    rewards: np.ndarray
    """(N,) float32, raw environment rewards."""
    next_observations: np.ndarray
    """(N, O) float32: ``observations[t + 1]`` inside an episode, the episode's ``final_observation`` at its last
    step (a copy of the observation at a true terminal without one; it is masked out there)."""
    terminals: np.ndarray
    """(N,) float32, 1 only at true terminals (not at time-limit truncations)."""
    episode_returns: np.ndarray
    """(E,) float64 undiscounted return of every episode (for reward normalisation)."""


def transitions_from_episodes(
    episodes: Sequence[Episode], observation_dim: int, action_dim: int, *, need_next: bool
) -> Transitions:
    """Join episodes into :class:`Transitions`, checking their sizes against the agent's spaces.

    Args:
        episodes: validated episodes (:func:`tt_agents.data_loading.load_episodes`).
        observation_dim: the agent's observation size.
        action_dim: the agent's action size.
        need_next: drop the last step of a truncated episode that has no ``final_observation`` (its next
            observation is unknown, so it cannot be bootstrapped). Behaviour cloning keeps every step.

    Raises:
        ValueError: no episodes, or an episode whose observation/action size differs from the spaces.
    """
    if len(episodes) == 0:
        raise ValueError("the dataset has no episodes")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "act", "rew", "next", "term")}
    for index, episode in enumerate(episodes):
        obs_dim, act_dim = episode.observations.shape[1], episode.actions.shape[1]
        if obs_dim != observation_dim or act_dim != action_dim:
            raise ValueError(
                f"episode {index} has observation size {obs_dim} and action size {act_dim}, but the agent's spaces "
                f"have {observation_dim} and {action_dim}: the dataset does not match the environment"
            )
        observations, length = episode.observations, len(episode)
        if episode.final_observation is not None:
            following = np.concatenate([observations[1:], episode.final_observation[None]])  # (T, O)
            keep = length
        elif episode.terminated:
            following = np.concatenate([observations[1:], observations[-1:]])  # terminal: masked out
            keep = length
        else:
            following = np.concatenate([observations[1:], observations[-1:]])
            keep = length - 1 if need_next else length
        terminals = np.zeros(length, dtype=np.float32)
        terminals[-1] = float(episode.terminated)
        parts["obs"].append(observations[:keep])
        parts["act"].append(episode.actions[:keep])
        parts["rew"].append(episode.rewards[:keep])
        parts["next"].append(following[:keep])
        parts["term"].append(terminals[:keep])
    transitions = Transitions(
        observations=np.concatenate(parts["obs"]).astype(np.float32),
        actions=np.concatenate(parts["act"]).astype(np.float32),
        rewards=np.concatenate(parts["rew"]).astype(np.float32),
        next_observations=np.concatenate(parts["next"]).astype(np.float32),
        terminals=np.concatenate(parts["term"]),
        episode_returns=np.array([episode.rewards.sum(dtype=np.float64) for episode in episodes]),
    )
    if len(transitions.rewards) == 0:
        raise ValueError("the dataset has no usable transitions")
    return transitions
