"""Recording episodes in several processes, each episode with randomness of its own.

:func:`record_episodes` runs episode ``k`` from the ``k``-th reset seed of the recording's seed (the starts a
one-process recording draws too) with its own noise seed for the policy (torch's global generator and the action
space are seeded with it at the episode's start), so episode ``k`` is the same whichever process runs it: the
recorded dataset is the same for any number of workers, and a machine with more cores records it faster. Episodes
are handed out in order and gathered in order; recording stops at the first episode past either limit, the last
one cut to the step limit and marked truncated.
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from itertools import count
from typing import Any

import gymnasium
import numpy as np
import torch
from minari.data_collector.episode_buffer import EpisodeBuffer

from .._io import make_progress

_EPISODES_AHEAD_PER_WORKER = 2


def episode_reset_seeds(seed: int) -> Iterator[int]:
    """The reset seed of each episode: ``seed`` for the first, then draws from ``numpy.random.default_rng(seed)``
    (the sequence the one-process recorder uses)."""
    draws = np.random.default_rng(seed)
    yield seed
    while True:
        yield int(draws.integers(2**31))


def episode_noise_seed(seed: int, episode: int) -> int:
    """The seed of episode ``episode``'s own policy and action-space randomness in a recording seeded ``seed``."""
    return int(np.random.SeedSequence([seed, episode]).generate_state(1)[0])


@dataclass(frozen=True)
class EpisodeTask:
    """What a worker needs to record one episode."""

    episode: int
    reset_seed: int
    noise_seed: int


@dataclass
class _Recorder:
    """One process's environment and policy."""

    env: gymnasium.Env
    policy: Any

    def record(self, task: EpisodeTask) -> EpisodeBuffer:
        # SB3 samples stochastic actions from torch's global CPU generator (the policies run on the CPU); seeding it
        # alone leaves any CUDA generator of the caller untouched
        torch.default_generator.manual_seed(task.noise_seed)
        self.env.action_space.seed(task.noise_seed)
        reset_policy = getattr(self.policy, "reset", None)
        if reset_policy is not None:
            reset_policy()
        observation, _ = self.env.reset(seed=task.reset_seed)
        observations, actions, rewards, terminations, truncations = [observation], [], [], [], []
        while True:
            action = self.env.action_space.sample() if self.policy is None else self.policy(observation)
            action = np.asarray(action, dtype=self.env.action_space.dtype)
            observation, reward, terminated, truncated, _ = self.env.step(action)
            observations.append(observation)
            actions.append(action)
            rewards.append(float(reward))
            terminations.append(bool(terminated))
            truncations.append(bool(truncated))
            if terminated or truncated:
                break
        return EpisodeBuffer(
            id=task.episode,
            seed=task.reset_seed,
            observations=_stack(observations),
            actions=np.stack(actions),
            rewards=np.asarray(rewards),
            terminations=np.asarray(terminations),
            truncations=np.asarray(truncations),
        )


def _stack(items: list[Any]) -> Any:
    """Stack a list of arrays, or of (nested) dicts of arrays, along a new first axis."""
    if isinstance(items[0], dict):
        return {key: _stack([item[key] for item in items]) for key in items[0]}
    return np.stack(items)


_WORKER_RECORDER: _Recorder | None = None


def make_env(env: str | gymnasium.envs.registration.EnvSpec, max_episode_steps: int | None) -> gymnasium.Env:
    """``gymnasium.make(env)``, with ``max_episode_steps`` as its time limit when given."""
    return gymnasium.make(env, **({} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}))


def _start_worker(env: str | gymnasium.envs.registration.EnvSpec, max_episode_steps: int | None, policy: Any) -> None:
    global _WORKER_RECORDER
    torch.set_num_threads(1)
    _WORKER_RECORDER = _Recorder(make_env(env, max_episode_steps), policy)


def _record_in_worker(task: EpisodeTask) -> EpisodeBuffer:
    assert _WORKER_RECORDER is not None, "worker not started"
    return _WORKER_RECORDER.record(task)


def _tasks(seed: int) -> Iterator[EpisodeTask]:
    for episode, reset_seed in zip(count(), episode_reset_seeds(seed)):
        yield EpisodeTask(episode, reset_seed, episode_noise_seed(seed, episode))


def _in_order(executor: ProcessPoolExecutor, tasks: Iterator[EpisodeTask], ahead: int) -> Iterator[EpisodeBuffer]:
    """The workers' episodes in task order, with at most ``ahead`` tasks handed out at a time."""
    pending: deque[Future[EpisodeBuffer]] = deque()
    for task in tasks:
        pending.append(executor.submit(_record_in_worker, task))
        if len(pending) >= ahead:
            yield pending.popleft().result()


def _cut(episode: EpisodeBuffer, steps: int) -> EpisodeBuffer:
    """The first ``steps`` steps of ``episode``, the last marked truncated (unless it terminated)."""
    truncations = np.array(episode.truncations[:steps])
    truncations[-1] = not episode.terminations[steps - 1]
    observations = episode.observations
    if isinstance(observations, dict):
        observations = {key: value[: steps + 1] for key, value in observations.items()}
    else:
        observations = observations[: steps + 1]
    return EpisodeBuffer(
        id=episode.id,
        seed=episode.seed,
        observations=observations,
        actions=episode.actions[:steps],
        rewards=episode.rewards[:steps],
        terminations=episode.terminations[:steps],
        truncations=truncations,
    )


def _check_sendable(policy: Any, env: str | gymnasium.envs.registration.EnvSpec) -> None:
    try:
        pickle.dumps((policy, env))
    except Exception as exc:  # pickling raises many types (PicklingError, TypeError, AttributeError)
        raise ValueError(
            f"recording with several workers sends the policy and the environment to other processes, and this "
            f"policy cannot be sent ({type(exc).__name__}: {exc}); record with workers=None or 1, or use a policy "
            "made of module-level classes"
        ) from None


def record_episodes(
    env: str | gymnasium.envs.registration.EnvSpec,
    policy: Any,
    *,
    workers: int,
    n_episodes: int | None = None,
    n_steps: int | None = None,
    seed: int = 0,
    max_episode_steps: int | None = None,
    label: str = "episodes",
    show_progress: bool = True,
) -> list[EpisodeBuffer]:
    """Record episodes of ``policy`` in ``workers`` processes (one: this process), until either limit.

    Args:
        env: a Gymnasium id or ``EnvSpec``, made in every worker.
        policy: maps an observation to an action (``None``: uniform random actions); a ``reset()`` method is
            called at every episode start. Its randomness must come from torch's global generator or from the
            action space (both seeded per episode); with several workers it must be picklable.
        workers: processes recording at once; the episodes do not depend on it.
        n_episodes: stop after this many episodes.
        n_steps: stop after this many steps, the last episode cut there and marked truncated.
        seed: the recording's seed (reset seeds as in :func:`episode_reset_seeds`, noise seeds as in
            :func:`episode_noise_seed`).
        max_episode_steps: time limit (default: the environment's own).
        label: the progress bar's name.
        show_progress: show a progress bar.

    Returns:
        The episodes, as Minari episode buffers numbered from 0.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    episodes: list[EpisodeBuffer] = []
    returns: list[float] = []
    steps = 0
    with make_progress(show=show_progress) as progress, torch.random.fork_rng(devices=[]):
        task = progress.add_task(f"recording {label}", total=n_episodes if n_episodes is not None else n_steps)
        if workers == 1:
            recorder = _Recorder(make_env(env, max_episode_steps), policy)
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            results: Iterator[EpisodeBuffer] = map(recorder.record, _tasks(seed))
            executor = None
        else:
            _check_sendable(policy, env)
            executor = ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(env, max_episode_steps, policy),
            )
            results = _in_order(executor, _tasks(seed), workers * _EPISODES_AHEAD_PER_WORKER)
        try:
            for episode in results:
                if n_steps is not None and steps + len(episode) >= n_steps:
                    episodes.append(_cut(episode, n_steps - steps))
                    steps = n_steps
                else:
                    episodes.append(episode)
                    steps += len(episode)
                returns.append(float(np.sum(episodes[-1].rewards)))
                progress.update(
                    task,
                    completed=len(episodes) if n_episodes is not None else steps,
                    description=f"recording {label}: mean return {np.mean(returns):.1f}",
                )
                if (n_episodes is not None and len(episodes) >= n_episodes) or steps == n_steps:
                    break
        finally:
            if executor is None:
                recorder.env.close()
                torch.set_num_threads(threads)
            else:
                executor.shutdown(wait=True, cancel_futures=True)
    return episodes
