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
    goal_columns: slice | None = None,
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
            ``goal_key="achieved_goal"``) whose observations hold the achieved positions: all their columns,
            or ``goal_columns`` of them (as many columns as the goal has). A prefix keeps its episode's map and
            discrete actions.
        n_per_episode: prefixes added per episode (fewer when the episode is short).
        min_length: shortest prefix, in steps.
        seed: seed of the prefix lengths.
        step_reward: reward of the steps before a prefix's last.
        goal_reward: reward of a prefix's last step, the one reaching its goal.
        goal_columns: the observation columns that are the achieved position (default: all of them), e.g.
            ``slice(0, 2)`` for MiniGrid's ``[x, y, direction]``.

    Returns:
        The episodes in order, each followed by its prefixes.
    """
    rng = np.random.default_rng(seed)
    out: list[Episode] = []
    for episode in episodes:
        if episode.goal is None:
            raise ValueError("relabelled_prefixes needs goal-conditioned episodes (Episode.goal set)")
        positions = episode.observations[:, goal_columns or slice(None)]  # (T, G)
        if positions.shape[1] != len(episode.goal):
            raise ValueError(
                f"relabelled_prefixes needs observations that are the achieved positions; they have "
                f"{positions.shape[1]} columns but the goal has {len(episode.goal)} (pass goal_columns=...)"
            )
        out.append(episode)
        lengths = np.arange(min_length, len(episode))  # prefixes strictly shorter than the episode
        if len(lengths) == 0 or n_per_episode < 1:
            continue
        for t in rng.choice(lengths, size=min(n_per_episode, len(lengths)), replace=False):
            reached = positions[t]  # (G,) the position after step t - 1: the prefix's final state
            rewards = np.full(t, step_reward, dtype=np.float32)  # (t,)
            rewards[-1] = goal_reward
            actions = episode.actions[:t, 0].astype(np.int64) if episode.discrete_actions else episode.actions[:t]
            out.append(
                Episode(
                    episode.observations[:t],
                    actions,
                    rewards,
                    True,
                    episode.observations[t],
                    reached,
                    map=episode.map[:t] if episode.map_per_step else episode.map,
                )
            )
    return out
