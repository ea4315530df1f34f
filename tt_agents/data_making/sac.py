"""Resumable SB3 SAC runs: the policies and replay buffers behind the D4RL-style locomotion datasets.

:func:`train_sac` trains (or continues) one run per folder, keeping resumable checkpoints and an evaluated
policy snapshot every ``eval_every`` steps (:func:`read_evaluations`, :func:`load_sac_policy`);
:func:`replay_buffer_episodes` splits the run's replay buffer into Minari-style episodes. Nothing of a run is
pickled (:mod:`~tt_agents.data_making.sac_files`). Stable-Baselines3 is imported only when a run trains or is read.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch
from rich.progress import Progress, TaskID

from .._io import CheckpointError, make_progress, write_json_atomic
from .sac_files import (
    PROGRESS,
    REPLAY_BUFFER,
    TRAINING_STATE,
    find_checkpoint,
    legacy_run_message,
    load_sac_policy_folder,
    read_replay_buffer,
    restore_replay_buffer,
    restore_sac_state,
    save_checkpoint,
    save_sac_policy,
)

SHORT_ENV_NAMES: dict[str, str] = {
    "hopper": "Hopper-v5",
    "halfcheetah": "HalfCheetah-v5",
    "walker2d": "Walker2d-v5",
    "ant": "Ant-v5",
}
"""Short names accepted wherever an environment id is (``"hopper"`` → ``"Hopper-v5"``)."""
DEFAULT_SAC_WORKDIR = "~/.cache/tt_agents/sac"
"""Where :func:`tt_agents.data_making.make_locomotion_dataset` caches its SAC runs (one sub-folder per environment
and seed)."""

_EVALUATIONS, _RUN_INFO, _POLICIES = "evaluations.json", "run.json", "policies"


@dataclass(frozen=True)
class SACEvaluation:
    """One evaluation of a SAC run (an entry of the run's ``evaluations.json``)."""

    step: int
    """Environment steps the policy had been trained for."""
    mean_return: float
    """Mean undiscounted return over the evaluation episodes (deterministic actions)."""
    std_return: float
    """Standard deviation of those returns."""
    policy: str
    """Path of the policy snapshot, relative to the run folder (load it with :func:`load_sac_policy`)."""


def resolve_env_id(env_id: str) -> str:
    """A registered Gymnasium id for ``env_id``, accepting short names (``"hopper"`` → ``"Hopper-v5"``)."""
    key = env_id.lower().replace("-", "").replace("_", "")
    if key in SHORT_ENV_NAMES:
        return SHORT_ENV_NAMES[key]
    try:
        gymnasium.spec(env_id)
    except gymnasium.error.Error as exc:
        raise ValueError(
            f"unknown environment {env_id!r} ({exc}); give a registered Gymnasium id or one of the short names "
            f"{sorted(SHORT_ENV_NAMES)}"
        ) from None
    return env_id


def sac_run_dir(env_id: str, seed: int = 0, workdir: str | os.PathLike[str] | None = None) -> Path:
    """The folder of the cached SAC run for ``env_id`` and ``seed`` under ``workdir``."""
    root = Path(workdir if workdir is not None else DEFAULT_SAC_WORKDIR).expanduser()
    return root / resolve_env_id(env_id).replace("/", "__") / f"seed{seed}"


def read_evaluations(workdir: str | os.PathLike[str]) -> list[SACEvaluation]:
    """The evaluations of the SAC run in ``workdir`` (empty before the first one), in step order."""
    path = Path(workdir).expanduser() / _EVALUATIONS
    if not path.exists():
        return []
    return [SACEvaluation(**entry) for entry in json.loads(path.read_text())]


def load_sac_policy(workdir: str | os.PathLike[str], evaluation: SACEvaluation) -> Any:
    """The SB3 ``SACPolicy`` snapshot of ``evaluation`` (on CPU); ``policy.predict(obs, deterministic=...)``."""
    workdir = Path(workdir).expanduser()
    if evaluation.policy.endswith(".pt"):
        raise CheckpointError(legacy_run_message(workdir))
    return load_sac_policy_folder(workdir / evaluation.policy)


def check_box_actions(env_id: str) -> None:
    """A ValueError unless ``env_id`` has continuous (Box) actions, which SAC needs."""
    env = gymnasium.make(env_id)
    try:
        space = env.action_space
    finally:
        env.close()
    if not isinstance(space, gymnasium.spaces.Box):
        raise ValueError(f"{env_id} has action space {space}; SAC datasets need continuous (Box) actions")


def _progress_callback(progress: Progress, task: TaskID) -> Any:
    """An SB3 callback that moves the progress bar every 100 steps."""
    from stable_baselines3.common.callbacks import BaseCallback

    class ProgressCallback(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % 100 == 0:
                progress.update(task, completed=self.num_timesteps)
            return True

    return ProgressCallback()


def _evaluate_and_snapshot(
    model: Any, eval_env: Any, episodes: int, seed: int, workdir: Path, evaluations: list[SACEvaluation]
) -> SACEvaluation:
    """Evaluate ``model`` (deterministic, the same reset seeds every time), keep its policy, log the result."""
    from stable_baselines3.common.evaluation import evaluate_policy

    step = model.num_timesteps
    eval_env.seed(seed)
    returns, _ = evaluate_policy(model, eval_env, n_eval_episodes=episodes, return_episode_rewards=True)
    relative = f"{_POLICIES}/step_{step:09d}"
    save_sac_policy(model.policy, workdir / relative)
    evaluation = SACEvaluation(step, float(np.mean(returns)), float(np.std(returns)), relative)
    evaluations.append(evaluation)
    write_json_atomic(workdir / _EVALUATIONS, [asdict(e) for e in evaluations])
    return evaluation


def _claim_run(workdir: Path, env_id: str, seed: int, sac_kwargs: dict[str, Any]) -> None:
    """Write ``run.json`` for a new run; a ValueError when ``workdir`` holds a run with other settings."""
    run_info = {"env_id": env_id, "seed": seed, "sac_kwargs": sac_kwargs}
    info_path = workdir / _RUN_INFO
    if not info_path.exists():
        write_json_atomic(info_path, run_info)
        return
    saved = json.loads(info_path.read_text())
    if saved != json.loads(json.dumps(run_info)):
        raise ValueError(f"{workdir} holds a SAC run with {saved}, not {run_info}; use another workdir (or delete it)")


def _open_run(env_id: str, workdir: str | os.PathLike[str], seed: int, sac_kwargs: dict[str, Any]) -> tuple[str, Path]:
    """The resolved environment id and the run folder, created and claimed for these settings (a ValueError when it
    holds a run with other ones)."""
    env_id = resolve_env_id(env_id)
    check_box_actions(env_id)
    workdir = Path(workdir).expanduser()
    workdir.mkdir(parents=True, exist_ok=True)
    _claim_run(workdir, env_id, seed, sac_kwargs)
    return env_id, workdir


@contextmanager
def _training_envs(env_id: str) -> Iterator[tuple[gymnasium.Env, Any]]:
    """SAC's training environment and the monitored vectorised one it is evaluated in, with torch on one thread;
    the thread count is restored and the environments closed afterwards."""
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    env = gymnasium.make(env_id)
    eval_env = DummyVecEnv([lambda: Monitor(gymnasium.make(env_id))])
    try:
        yield env, eval_env
    finally:
        torch.set_num_threads(threads)
        env.close()
        eval_env.close()


def _resume_or_start(
    env: gymnasium.Env, workdir: Path, seed: int, buffer_size: int, sac_kwargs: dict[str, Any]
) -> tuple[Any, list[SACEvaluation]]:
    """The SAC model at the last checkpoint (dropping evaluations made after it), or a new one; its evaluations.

    A resumed run's replay buffer grows to ``buffer_size`` unless it has wrapped already (its earliest
    transitions are gone): then it keeps its size.
    """
    from stable_baselines3 import SAC

    evaluations = read_evaluations(workdir)
    checkpoint = find_checkpoint(workdir)
    if checkpoint is not None:
        buffer = read_replay_buffer(checkpoint / REPLAY_BUFFER)
        saved_size = int(buffer["buffer_size"])
        wrapped = bool(buffer["full"]) and int(buffer["position"]) != 0
        size = saved_size if wrapped else max(buffer_size, saved_size)
        kwargs = {"buffer_size": size, **copy.deepcopy(sac_kwargs)}  # SB3 edits them
        model = SAC("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **kwargs)
        restore_sac_state(model, checkpoint / TRAINING_STATE)
        restore_replay_buffer(model.replay_buffer, buffer)
        model.set_random_seed(seed + model.num_timesteps)
        for evaluation in evaluations:
            if evaluation.step > model.num_timesteps:
                shutil.rmtree(workdir / evaluation.policy, ignore_errors=True)
        evaluations = [e for e in evaluations if e.step <= model.num_timesteps]
        write_json_atomic(workdir / _EVALUATIONS, [asdict(e) for e in evaluations])
        return model, evaluations
    if evaluations:  # evaluations without any checkpoint: a run killed before its first checkpoint
        shutil.rmtree(workdir / _POLICIES, ignore_errors=True)
        (workdir / _EVALUATIONS).unlink()
    kwargs = {"buffer_size": buffer_size, **copy.deepcopy(sac_kwargs)}  # SB3 edits them
    return SAC("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **kwargs), []


def _learn_until(
    model: Any,
    eval_env: Any,
    workdir: Path,
    evaluations: list[SACEvaluation],
    *,
    label: str,
    total_steps: int,
    seed: int,
    checkpoint_every: int,
    eval_every: int,
    eval_episodes: int,
    target_return: float | None,
    show_progress: bool,
) -> None:
    """Learn in chunks up to ``total_steps`` (or the target return), evaluating and checkpointing on schedule."""
    with make_progress(show=show_progress) as progress:
        task = progress.add_task(label, total=total_steps, completed=model.num_timesteps)
        callback = _progress_callback(progress, task)
        while model.num_timesteps < total_steps:
            step = model.num_timesteps
            # learn in chunks up to the next evaluation/checkpoint: between two `learn` calls the episode
            # goes on, and the replay buffer, the step count and the gradient updates agree
            stop_at = min(total_steps, (step // eval_every + 1) * eval_every)
            stop_at = min(stop_at, (step // checkpoint_every + 1) * checkpoint_every)
            model.learn(stop_at - step, callback=callback, reset_num_timesteps=False)
            step = model.num_timesteps
            reached = False
            if step % eval_every == 0 or step >= total_steps:
                evaluation = _evaluate_and_snapshot(model, eval_env, eval_episodes, seed + 10_000, workdir, evaluations)
                reached = target_return is not None and evaluation.mean_return >= target_return
                progress.update(
                    task,
                    description=f"{label}: return {evaluation.mean_return:.1f} ± {evaluation.std_return:.1f} at {step}",
                )
            if step % checkpoint_every == 0 or step >= total_steps or reached:
                save_checkpoint(model, workdir)
            progress.update(task, completed=step)
            if reached:
                break


def train_sac(
    env_id: str,
    total_steps: int,
    workdir: str | os.PathLike[str],
    *,
    seed: int = 0,
    checkpoint_every: int = 10_000,
    show_progress: bool = True,
    eval_every: int = 10_000,
    eval_episodes: int = 5,
    target_return: float | None = None,
    buffer_size: int | None = None,
    sac_kwargs: dict[str, Any] | None = None,
) -> Path:
    """Train (or continue training) an SB3 SAC agent to ``total_steps`` environment steps, resumably.

    ``workdir`` holds one run::

        run.json               env id, seed and SAC arguments (a rerun with different ones is an error)
        checkpoint/            training_state/ (weights, optimizers, counters) + replay_buffer.npz + state.json,
                               every ``checkpoint_every`` steps
        evaluations.json       [{step, mean_return, std_return, policy}] (see :func:`read_evaluations`)
        policies/step_*/       the policy at each evaluation (see :func:`load_sac_policy`)

    Training runs as ``model.learn`` calls up to the next evaluation or checkpoint (``reset_num_timesteps=False``,
    so episodes continue across calls and a checkpoint's replay buffer holds exactly its step count of
    transitions). A rerun builds SAC with the run's arguments, loads the last checkpoint into it and continues;
    evaluations made after that checkpoint (lost work) are dropped, and the episode running at the checkpoint
    is cut there (:func:`replay_buffer_episodes` splits it off as truncated). The
    replay buffer holds every transition of the run (``buffer_size`` defaults to ``total_steps``, and a
    resumed buffer that has not wrapped is enlarged), so its first ``n`` entries are the first ``n`` steps.
    The policy is evaluated every ``eval_every`` steps and once more at the final step. Uses one torch
    thread (restored afterwards) and the CPU. SB3 sees each chunk as a whole ``learn`` call, so learning-rate
    schedules in ``sac_kwargs`` would restart every chunk: keep SB3's constant rates.

    Args:
        env_id: a Gymnasium id with Box actions, or a short name (``"hopper"``).
        total_steps: environment steps to train to, counting the steps of earlier runs in ``workdir``.
        workdir: the run's folder (created).
        seed: seed of SAC, its environment and the evaluation resets.
        checkpoint_every: steps between checkpoints.
        show_progress: show a rich progress bar with the latest evaluation.
        eval_every: steps between evaluations.
        eval_episodes: episodes per evaluation.
        target_return: stop at the first evaluation whose mean return reaches this (also when an existing
            evaluation already has; the run can be continued later with a larger ``total_steps``).
        buffer_size: replay buffer size of a new run (default ``total_steps``).
        sac_kwargs: extra ``stable_baselines3.SAC`` arguments (JSON-serialisable).

    Returns:
        ``workdir`` as a ``Path``.
    """
    if total_steps < 1 or eval_every < 1 or eval_episodes < 1 or checkpoint_every < 1:
        raise ValueError("train_sac: total_steps, eval_every, eval_episodes and checkpoint_every must be >= 1")
    sac_kwargs = dict(sac_kwargs or {})
    env_id, workdir = _open_run(env_id, workdir, seed, sac_kwargs)
    if target_return is not None and any(e.mean_return >= target_return for e in read_evaluations(workdir)):
        return workdir
    with _training_envs(env_id) as (env, eval_env):
        model, evaluations = _resume_or_start(env, workdir, seed, buffer_size or total_steps, sac_kwargs)
        if model.num_timesteps < total_steps:
            _learn_until(
                model,
                eval_env,
                workdir,
                evaluations,
                label=f"SAC {env_id}",
                total_steps=total_steps,
                seed=seed,
                checkpoint_every=checkpoint_every,
                eval_every=eval_every,
                eval_episodes=eval_episodes,
                target_return=target_return,
                show_progress=show_progress,
            )
    return workdir


def replay_buffer_episodes(
    observations: np.ndarray,
    next_observations: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    dones: np.ndarray,
    timeouts: np.ndarray,
) -> list[dict[str, np.ndarray]]:
    """Split replay-buffer transitions (in insertion order) into Minari-style episodes.

    An episode ends at a ``done``; it also ends where ``next_observations[t] != observations[t + 1]`` without a
    done (the environment was reset by a resumed run) and at the last transition. Only a done that is not a
    ``timeout`` is a true terminal; the other endings are truncations.

    Args:
        observations: (N, O) observations.
        next_observations: (N, O) the observation after each step (the terminal one at an episode's end).
        actions: (N, A) actions in the environment's units.
        rewards: (N,) rewards.
        dones: (N,) episode ended (terminated or truncated).
        timeouts: (N,) the episode ended by a time limit.

    Returns:
        Dicts with ``observations`` (T + 1, O), ``actions`` (T, A), ``rewards`` (T,), ``terminations`` and
        ``truncations`` (T,) bool.
    """
    n = len(observations)
    dones, timeouts = np.asarray(dones, dtype=bool).reshape(n), np.asarray(timeouts, dtype=bool).reshape(n)
    rewards = np.asarray(rewards).reshape(n)
    breaks = np.ones(n, dtype=bool)  # (N,) the last transition always closes an episode
    breaks[:-1] = np.any(next_observations[:-1] != observations[1:], axis=tuple(range(1, observations.ndim)))
    ends = np.flatnonzero(dones | breaks)  # (E,)
    episodes = []
    start = 0
    for end in ends:
        length = end + 1 - start
        terminated = bool(dones[end] and not timeouts[end])
        terminations = np.zeros(length, dtype=bool)
        terminations[-1] = terminated
        truncations = np.zeros(length, dtype=bool)
        truncations[-1] = not terminated
        episodes.append(
            {
                "observations": np.concatenate([observations[start : end + 1], next_observations[end][None]]),
                "actions": actions[start : end + 1],
                "rewards": rewards[start : end + 1],
                "terminations": terminations,
                "truncations": truncations,
            }
        )
        start = end + 1
    return episodes


def sac_replay_episodes(workdir: Path, n_steps: int) -> list[dict[str, np.ndarray]]:
    """The first ``n_steps`` transitions of the run's replay buffer as episodes (actions unscaled)."""
    checkpoint = find_checkpoint(workdir)
    if checkpoint is None:
        raise FileNotFoundError(f"no SAC checkpoint in {workdir}")
    buffer = read_replay_buffer(checkpoint / REPLAY_BUFFER)
    buffer_size = int(buffer["buffer_size"])
    run_steps = json.loads((checkpoint / PROGRESS).read_text())["num_timesteps"]
    if run_steps > buffer_size or run_steps < n_steps:
        raise ValueError(
            f"the replay buffer in {checkpoint} has size {buffer_size} for a run of {run_steps} steps, but its "
            f"first {n_steps} transitions are needed in order; rerun in a fresh workdir with buffer_size >= the SAC "
            "steps"
        )
    low, high = buffer["action_low"].astype(np.float64), buffer["action_high"].astype(np.float64)
    scaled = buffer["actions"][:n_steps, 0].astype(np.float64)  # (N, A) in [-1, 1]: SB3 stores scaled actions
    actions = np.clip(low + 0.5 * (scaled + 1.0) * (high - low), low, high).astype(buffer["action_low"].dtype)
    return replay_buffer_episodes(
        buffer["observations"][:n_steps, 0],
        buffer["next_observations"][:n_steps, 0],
        actions,
        buffer["rewards"][:n_steps, 0],
        buffer["dones"][:n_steps, 0],
        buffer["timeouts"][:n_steps, 0],
    )
