"""Offline-RL datasets made locally, written in Minari format.

:func:`record_dataset` runs a policy in a Gymnasium environment under ``minari.DataCollector`` and writes a
local Minari dataset (under ``MINARI_DATASETS_PATH``, default ``~/.minari/datasets``) with reference
scores, so :func:`tt_agents.data.load_episodes` and ``minari.get_normalized_score`` work on it offline.

:func:`inverted_pendulum_policy` is a scripted linear-feedback expert for ``InvertedPendulum-v5`` and
:func:`make_inverted_pendulum_dataset` records an ``expert`` or a ``mixed``-quality dataset with it in a few
seconds: the offline demo and the tests use these.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from typing import Literal

import gymnasium
import minari
import numpy as np
from minari.dataset.minari_dataset import parse_dataset_id
from minari.storage import get_dataset_path
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

Policy = Callable[[np.ndarray], np.ndarray]

INVERTED_PENDULUM_ENV = "InvertedPendulum-v5"
INVERTED_PENDULUM_GAINS = (2.0, 20.0, 2.0, 2.0)
"""Gains ``k`` of the expert ``action = k · observation`` on (cart position, pole angle, cart velocity, pole
angular velocity); found by a grid search over 256 gain vectors that balance the pole for 1000 steps and
chosen for keeping the cart near the centre and tolerating action noise of std 1."""
INVERTED_PENDULUM_RANDOM_RETURN = 5.1
"""Mean return of uniformly random actions on ``InvertedPendulum-v5`` (measured once over 2000 episodes,
reset seeds 10000-11999, ``env.action_space.sample()`` seeded 0; std 3.6, range 2-31): ``ref_min_score``."""
INVERTED_PENDULUM_MAX_RETURN = 1000.0
"""The most an episode can score (1 per step for the 1000-step time limit): ``ref_max_score``."""

_EXPERT_NOISE = 0.2
_NOISY_NOISE_RANGE = (1.0, 4.0)
_DEFAULT_EPISODES = {"expert": 50, "mixed": 100}
_METADATA_WARNINGS = r"`(code_permalink|author|author_email|eval_env)` is set to None"


def record_dataset(
    env_id: str | gymnasium.Env,
    policy: Policy | None,
    dataset_id: str,
    *,
    n_episodes: int | None = None,
    n_steps: int | None = None,
    seed: int = 0,
    ref_min_score: float | None = None,
    ref_max_score: float | None = None,
    algorithm_name: str = "scripted",
    description: str = "",
    overwrite: bool = False,
    max_episode_steps: int | None = None,
    show_progress: bool = True,
) -> minari.MinariDataset:
    """Record ``policy`` in an environment and write a local Minari dataset.

    Args:
        env_id: a registered Gymnasium id (made here and closed afterwards) or an environment (left open).
        policy: maps an observation to an action; ``None`` samples uniformly from the action space. A policy
            with a ``reset()`` method has it called at the start of every episode.
        dataset_id: Minari id ``namespace/name-vN``, e.g. ``"tt-agents/invertedpendulum/expert-v0"``.
        n_episodes: stop after this many episodes.
        n_steps: stop after this many steps (the last episode is then stored as truncated). With both
            limits, recording stops at whichever comes first.
        seed: the first episode is reset with ``seed``, later ones with seeds drawn from it (each episode's
            seed is stored in the dataset); also seeds the action space.
        ref_min_score: mean return of a random policy, for ``minari.get_normalized_score``. When only
            ``ref_max_score`` is given, Minari estimates it from 100 random-policy episodes.
        ref_max_score: mean return of an expert policy.
        algorithm_name: stored in the dataset metadata.
        description: stored in the dataset metadata.
        overwrite: replace an existing dataset with the same id (otherwise that is an error).
        max_episode_steps: time limit for the episodes (default: the environment's own).
        show_progress: show a progress bar.

    Returns:
        The written dataset.
    """
    if n_episodes is None and n_steps is None:
        raise ValueError("record_dataset: give n_episodes and/or n_steps")
    for name, value in (("n_episodes", n_episodes), ("n_steps", n_steps)):
        if value is not None and value < 1:
            raise ValueError(f"record_dataset: {name} must be >= 1, got {value}")
    if ref_min_score is not None and ref_max_score is None:
        raise ValueError("record_dataset: ref_min_score needs ref_max_score (Minari stores them together)")
    try:
        parse_dataset_id(dataset_id)
    except (ValueError, TypeError):
        raise ValueError(
            f"record_dataset: malformed dataset id {dataset_id!r}; Minari ids look like 'namespace/name-vN', e.g. "
            "'tt-agents/invertedpendulum/expert-v0' (letters, digits, '-' and '_'; the version suffix is required)"
        ) from None
    path = get_dataset_path(dataset_id)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"Minari dataset {dataset_id!r} already exists at {path}; pass overwrite=True to replace it"
        )

    owns_env = isinstance(env_id, str)
    if isinstance(env_id, str):
        env = gymnasium.make(env_id, **({} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}))
    else:
        env = env_id if max_episode_steps is None else gymnasium.wrappers.TimeLimit(env_id, max_episode_steps)
    collector = minari.DataCollector(env, record_infos=False)
    collector.action_space.seed(seed)
    seeds = np.random.default_rng(seed)
    reset_policy = getattr(policy, "reset", None)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    episodes, steps, episode_return, returns = 0, 0, 0.0, []
    with Progress(*columns, disable=not show_progress) as progress:
        task = progress.add_task(f"recording {dataset_id}", total=n_episodes if n_episodes is not None else n_steps)
        observation, _ = collector.reset(seed=seed)
        if reset_policy is not None:
            reset_policy()
        while True:
            action = collector.action_space.sample() if policy is None else policy(observation)
            action = np.asarray(action, dtype=collector.action_space.dtype)
            observation, reward, terminated, truncated, _ = collector.step(action)
            steps += 1
            episode_return += float(reward)
            if terminated or truncated:
                episodes += 1
                returns.append(episode_return)
                episode_return = 0.0
                progress.update(task, description=f"recording {dataset_id}: mean return {np.mean(returns):.1f}")
            progress.update(task, completed=episodes if n_episodes is not None else steps)
            if (n_episodes is not None and episodes >= n_episodes) or (n_steps is not None and steps >= n_steps):
                break
            if terminated or truncated:
                observation, _ = collector.reset(seed=int(seeds.integers(2**31)))
                if reset_policy is not None:
                    reset_policy()

    if path.exists():  # overwrite=True (checked above)
        shutil.rmtree(path)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_METADATA_WARNINGS, category=UserWarning)
        dataset = collector.create_dataset(
            dataset_id=dataset_id,
            algorithm_name=algorithm_name,
            description=description,
            ref_min_score=ref_min_score,
            ref_max_score=ref_max_score,
        )
    if owns_env:
        collector.close()
    return dataset


def inverted_pendulum_policy(noise: float = 0.0, seed: int = 0) -> Policy:
    """A linear state-feedback expert for ``InvertedPendulum-v5``: ``action = k · observation + noise``.

    With ``noise=0`` it balances the pole for the full 1000 steps from the environment's random starts.

    Args:
        noise: std of Gaussian noise added to the action (in action units; the action range is [-3, 3]).
        seed: seed of the noise.

    Returns:
        A policy mapping observations (..., 4) to float32 actions (..., 1), clipped to [-3, 3].
    """
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    gains = np.array(INVERTED_PENDULUM_GAINS)  # (4,)
    rng = np.random.default_rng(seed)

    def policy(observation: np.ndarray) -> np.ndarray:
        action = np.asarray(observation, dtype=np.float64) @ gains  # (...,)
        if noise > 0:
            action = action + noise * rng.standard_normal(np.shape(action))
        return np.clip(action, -3.0, 3.0)[..., None].astype(np.float32)  # (..., 1)

    return policy


class _AlternatingPolicy:
    """Even episodes: the expert with small noise; odd episodes: a much noisier controller.

    Each noisy episode draws its noise std uniformly from ``noise_range``, so its return spreads from a few
    steps to the full 1000.
    """

    def __init__(self, expert_noise: float, noise_range: tuple[float, float], seed: int) -> None:
        self._expert = inverted_pendulum_policy(expert_noise, seed)
        self._rng = np.random.default_rng(seed + 1)
        self._noise_range = noise_range
        self._current = self._expert
        self._episode = -1

    def reset(self) -> None:
        self._episode += 1
        if self._episode % 2 == 0:
            self._current = self._expert
        else:
            noise = float(self._rng.uniform(*self._noise_range))
            self._current = inverted_pendulum_policy(noise, int(self._rng.integers(2**31)))

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
    """Record an ``InvertedPendulum-v5`` dataset with the scripted expert (a few seconds).

    Args:
        level: ``"expert"``: the controller with action noise of std 0.2 (every return 1000);
            ``"mixed"``: alternate episodes from that expert and from the controller with noise std drawn
            from [1, 4] per episode (returns from a handful of steps to 1000).
        n_episodes: episodes to record (default 50 for ``expert``, 100 for ``mixed``; about 5 s each).
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
        policy = _AlternatingPolicy(_EXPERT_NOISE, _NOISY_NOISE_RANGE, seed)
        description = (
            f"Alternating episodes: linear controller k={INVERTED_PENDULUM_GAINS} with action noise std "
            f"{_EXPERT_NOISE}, and with noise std drawn uniformly from {_NOISY_NOISE_RANGE} per episode."
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
