"""Hindsight relabelling with more goals: prefixes of goal-conditioned episodes as goal-reaching episodes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .episodes import Episode


def relabelled_prefixes(
    episodes: Sequence[Episode],
    n_per_episode: int,
    min_length: int = 4,
    seed: int = 0,
    *,
    step_reward: float = -1.0,
    goal_reward: float = 0.0,
) -> list[Episode]:
    """Hindsight relabelling with more goals: each episode followed by ``n_per_episode`` random prefixes of it.

    A prefix ending at step ``t`` is a trajectory whose final state is the position reached after step ``t``;
    it becomes a goal-reaching episode of its own (terminated, goal = that position, sparse goal-reaching
    rewards: ``step_reward`` on every step but the last, ``goal_reward`` on the last), exactly as the paper
    relabels whole trajectories with their final state. An expert's route to a farther goal passes through
    that point on a shortest route, so the prefix is a sensible demonstration for it too. This multiplies the
    distinct goals the model sees without any new environment steps.

    Args:
        episodes: goal-conditioned episodes (``goal`` set, e.g. from :func:`load_episodes` with
            ``goal_key="achieved_goal"``) whose observations are the achieved positions (as many columns as the
            goal has).
        n_per_episode: prefixes added per episode (fewer when the episode is short).
        min_length: shortest prefix, in steps.
        seed: seed of the prefix lengths.
        step_reward: reward of the steps before a prefix's last.
        goal_reward: reward of a prefix's last step, the one reaching its goal.

    Returns:
        The episodes in order, each followed by its prefixes.
    """
    rng = np.random.default_rng(seed)
    out: list[Episode] = []
    for episode in episodes:
        if episode.goal is None:
            raise ValueError("relabelled_prefixes needs goal-conditioned episodes (Episode.goal set)")
        if episode.observations.shape[1] != len(episode.goal):
            raise ValueError(
                f"relabelled_prefixes needs observations that are the achieved positions; they have "
                f"{episode.observations.shape[1]} columns but the goal has {len(episode.goal)}"
            )
        out.append(episode)
        lengths = np.arange(min_length, len(episode))  # prefixes strictly shorter than the episode
        if len(lengths) == 0 or n_per_episode < 1:
            continue
        for t in rng.choice(lengths, size=min(n_per_episode, len(lengths)), replace=False):
            reached = episode.observations[t]  # (G,) the position after step t - 1: the prefix's final state
            rewards = np.full(t, step_reward, dtype=np.float32)  # (t,)
            rewards[-1] = goal_reward
            out.append(Episode(episode.observations[:t], episode.actions[:t], rewards, True, reached, reached))
    return out
