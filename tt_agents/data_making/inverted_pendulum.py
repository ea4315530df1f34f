"""InvertedPendulum datasets from a scripted linear-feedback expert, recorded in seconds.

:func:`inverted_pendulum_policy` is the expert for ``InvertedPendulum-v5`` and :func:`make_inverted_pendulum_dataset`
records an ``expert`` or a ``mixed``-quality dataset with it: the offline demo and the tests use these.
"""

from __future__ import annotations

from typing import Literal

import minari
import numpy as np

from .recording import Policy, record_dataset

INVERTED_PENDULUM_ENV = "InvertedPendulum-v5"
INVERTED_PENDULUM_GAINS = (2.0, 20.0, 2.0, 2.0)
"""Gains ``k`` of the expert ``action = k · observation`` on (cart position, pole angle, cart velocity, pole
angular velocity); found by a grid search over 256 gain vectors that balance the pole for 1000 steps and
chosen for keeping the cart near the centre and tolerating action noise of std 1."""
INVERTED_PENDULUM_RANDOM_RETURN = 5.1
"""Mean return of uniformly random actions on ``InvertedPendulum-v5`` over 2000 episodes (reset seeds
10000-11999, ``env.action_space.sample()`` seeded 0): ``ref_min_score``."""
INVERTED_PENDULUM_MAX_RETURN = 1000.0
"""The most an episode can score (1 per step for the 1000-step time limit): ``ref_max_score``."""

_EXPERT_NOISE = 0.2
DRIFTING_GAINS = (0.0, 20.0, 0.0, 2.0)
"""Gains of the ``mixed`` dataset's poor controller: it balances the pole but ignores the cart, which drifts
until the pole falls."""
_DRIFTING_NOISE = 0.3
_EXPERT_EVERY = 4
_DEFAULT_EPISODES = {"expert": 50, "mixed": 160}


def inverted_pendulum_policy(
    noise: float = 0.0, seed: int = 0, gains: tuple[float, float, float, float] = INVERTED_PENDULUM_GAINS
) -> Policy:
    """A linear state-feedback controller for ``InvertedPendulum-v5``: ``action = k · observation + noise``.

    With the default (expert) gains and ``noise=0`` it balances the pole for the full 1000 steps from the
    environment's random starts.

    Args:
        noise: std of Gaussian noise added to the action (in action units; the action range is [-3, 3]).
        seed: seed of the noise.
        gains: ``k`` on (cart position, pole angle, cart velocity, pole angular velocity).

    Returns:
        A policy mapping observations (..., 4) to float32 actions (..., 1), clipped to [-3, 3].
    """
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    k = np.array(gains, dtype=np.float64)  # (4,)
    rng = np.random.default_rng(seed)

    def policy(observation: np.ndarray) -> np.ndarray:
        action = np.asarray(observation, dtype=np.float64) @ k  # (...,)
        if noise > 0:
            action = action + noise * rng.standard_normal(np.shape(action))
        return np.clip(action, -3.0, 3.0)[..., None].astype(np.float32)  # (..., 1)

    return policy


class _MixedPolicy:
    """Every ``expert_every``-th episode: the expert; the others: the drifting controller.

    Most of the data is the poor behaviour, so the most likely trajectory is poor: likelihood planning
    imitates it, while planning on predicted reward-to-go can pick out the expert's actions.
    """

    def __init__(self, seed: int) -> None:
        self._expert = inverted_pendulum_policy(_EXPERT_NOISE, seed)
        self._drifting = inverted_pendulum_policy(_DRIFTING_NOISE, seed + 1, gains=DRIFTING_GAINS)
        self._current = self._expert
        self._episode = -1

    def reset(self) -> None:
        self._episode += 1
        self._current = self._expert if self._episode % _EXPERT_EVERY == 0 else self._drifting

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        return self._current(observation)


def make_inverted_pendulum_dataset(
    level: Literal["expert", "mixed"],
    *,
    n_episodes: int | None = None,
    seed: int = 0,
    dataset_id: str | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> minari.MinariDataset:
    """Record an ``InvertedPendulum-v5`` dataset with the scripted expert.

    Args:
        level: ``"expert"``: the controller with action noise of std 0.2 (every return 1000);
            ``"mixed"``: one episode in four from that expert, the others from a controller that lets the cart
            drift off the rail until the pole falls, so the data's most likely behaviour is poor.
        n_episodes: episodes to record (default 50 for ``expert``, 160 for ``mixed``).
        seed: seed of the environment resets and the noise.
        dataset_id: default ``"tt-agents/invertedpendulum/{level}-v0"``.
        overwrite: replace an existing dataset with the same id.
        show_progress: show a progress bar.

    Returns:
        The dataset, with ``ref_min_score`` (random policy) and ``ref_max_score`` (1000) set.
    """
    if level == "expert":
        policy: Policy = inverted_pendulum_policy(_EXPERT_NOISE, seed)
        description = f"Linear controller k={INVERTED_PENDULUM_GAINS} with action noise std {_EXPERT_NOISE}."
    elif level == "mixed":
        policy = _MixedPolicy(seed)
        description = (
            f"One episode in {_EXPERT_EVERY}: linear controller k={INVERTED_PENDULUM_GAINS} with action noise std "
            f"{_EXPERT_NOISE}; the others: k={DRIFTING_GAINS} (the cart drifts until the pole falls) with noise "
            f"std {_DRIFTING_NOISE}."
        )
    else:
        raise ValueError(f"level must be 'expert' or 'mixed', got {level!r}")
    return record_dataset(
        INVERTED_PENDULUM_ENV,
        policy,
        dataset_id or f"tt-agents/invertedpendulum/{level}-v0",
        n_episodes=n_episodes or _DEFAULT_EPISODES[level],
        seed=seed,
        ref_min_score=INVERTED_PENDULUM_RANDOM_RETURN,
        ref_max_score=INVERTED_PENDULUM_MAX_RETURN,
        algorithm_name="linear-feedback controller",
        description=description,
        overwrite=overwrite,
        show_progress=show_progress,
    )
