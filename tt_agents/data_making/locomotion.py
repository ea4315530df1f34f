"""D4RL-v2-style locomotion datasets (``random``, ``medium``, ``medium-replay``, ``expert``, ``medium-expert``).

:func:`make_locomotion_dataset` makes them for MuJoCo locomotion and any Box-action environment: an SB3 SAC run
(:func:`tt_agents.data_making.sac.train_sac`: resumable checkpoints, an evaluated policy snapshot every
``eval_every`` steps, cached per environment and seed) provides the policies and the replay buffer, and
:class:`~tt_agents.data_making.budget.DatasetBudget` sets the compute (``DatasetBudget.paper()`` for D4RL's
sizes, ``DatasetBudget.cpu()`` for a laptop CPU). Each level has its own maker in :data:`LEVEL_MAKERS`.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import gymnasium
import minari
import numpy as np
import torch
from minari.storage import get_dataset_path
from rich.console import Console

from .._io import write_json_atomic
from .budget import D4RL_EXPERT_SAC_STEPS, DatasetBudget
from .data_policies import shipped_policy, shipped_sac_kwargs
from .recording import check_dataset_id, quiet_metadata_warnings, record_dataset, summarize_dataset, written_aside
from .sac import (
    SACEvaluation,
    check_box_actions,
    load_sac_policy,
    read_evaluations,
    resolve_env_id,
    sac_replay_episodes,
    sac_run_dir,
    train_sac,
)

LocomotionLevel = Literal["random", "medium", "medium-replay", "expert", "medium-expert"]
LOCOMOTION_LEVELS: tuple[str, ...] = ("random", "medium", "medium-replay", "expert", "medium-expert")
"""The D4RL v2 dataset levels :func:`make_locomotion_dataset` makes."""

D4RL_REFERENCE_SCORES: dict[str, tuple[float, float]] = {
    "Hopper-v5": (-20.272305, 3234.3),
    "HalfCheetah-v5": (-280.178953, 12135.0),
    "Walker2d-v5": (1.629008, 4592.3),
}
"""D4RL's (random, expert) reference returns, used as ``ref_min_score``/``ref_max_score`` for the MuJoCo
environments whose task matches D4RL's (so normalized scores compare with the paper's tables). ``Ant-v5`` is
left out: its observation (contact forces) and reward differ from D4RL's ``Ant-v2``. Other environments get
references measured here (random policy, and the SAC expert of the run)."""

_RANDOM_REFERENCE_EPISODES = 100
_RANDOM_RETURN = "random_return.json"


def locomotion_dataset_id(env_id: str, level: str) -> str:
    """The default Minari id of a level: ``"Hopper-v5", "medium"`` → ``"tt-agents/hopper/medium-v0"``."""
    if level not in LOCOMOTION_LEVELS:
        raise ValueError(f"level must be one of {LOCOMOTION_LEVELS}, got {level!r}")
    name = resolve_env_id(env_id).split("/")[-1]
    name = re.sub(r"-v\d+$", "", name).lower()
    name = re.sub(r"[^a-z0-9_-]", "", name)
    return f"tt-agents/{name}/{level}-v0"


def medium_target_return(ref_min: float, ref_max: float, fraction: float) -> float:
    """``ref_min + fraction * (ref_max - ref_min)``: the return a ``medium`` policy is trained to."""
    return ref_min + fraction * (ref_max - ref_min)


# ---------------------------------------------------------------------------------------------- SAC policies


def _random_return(env_id: str, workdir: Path, seed: int) -> float:
    """Mean return of uniformly random actions over 100 episodes, cached in the run folder."""
    path = workdir / _RANDOM_RETURN
    if path.exists():
        return float(json.loads(path.read_text())["mean_return"])
    env = gymnasium.make(env_id)
    env.action_space.seed(seed)
    returns = []
    for episode in range(_RANDOM_REFERENCE_EPISODES):
        env.reset(seed=seed + 20_000 + episode)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    write_json_atomic(path, {"mean_return": float(np.mean(returns)), "episodes": _RANDOM_REFERENCE_EPISODES})
    return float(np.mean(returns))


def _train(
    env_id: str,
    total_steps: int,
    workdir: Path,
    budget: DatasetBudget,
    show_progress: bool,
    target_return: float | None = None,
) -> list[SACEvaluation]:
    train_sac(
        env_id,
        total_steps,
        workdir,
        seed=budget.seed,
        checkpoint_every=budget.checkpoint_every,
        show_progress=show_progress,
        eval_every=budget.eval_every,
        eval_episodes=budget.eval_episodes,
        target_return=target_return,
        buffer_size=budget.sac_steps_expert,
        sac_kwargs=budget.sac_kwargs,
    )
    return read_evaluations(workdir)


def _expert_evaluation(env_id: str, workdir: Path, budget: DatasetBudget, show_progress: bool) -> SACEvaluation:
    """The run's evaluation at ``sac_steps_expert`` (training to it first)."""
    evaluations = _train(env_id, budget.sac_steps_expert, workdir, budget, show_progress)
    candidates = [e for e in evaluations if e.step <= budget.sac_steps_expert]
    return candidates[-1]


def _reference_scores(env_id: str, workdir: Path, budget: DatasetBudget, show_progress: bool) -> tuple[float, float]:
    """(ref_min_score, ref_max_score): D4RL's where the environment matches, else measured here."""
    if env_id in D4RL_REFERENCE_SCORES:
        return D4RL_REFERENCE_SCORES[env_id]
    ref_min = _random_return(env_id, workdir, budget.seed)
    ref_max = _expert_evaluation(env_id, workdir, budget, show_progress).mean_return
    return ref_min, ref_max


def _medium_evaluation(
    env_id: str, workdir: Path, budget: DatasetBudget, target: float, show_progress: bool
) -> SACEvaluation:
    """The evaluation closest to ``target`` among those up to the first that reaches it (within
    ``sac_steps_medium``): SAC returns jump between evaluations, and the first policy past the target can be far
    past it."""
    evaluations = _train(env_id, budget.sac_steps_medium, workdir, budget, show_progress, target_return=target)
    candidates = [e for e in evaluations if e.step <= budget.sac_steps_medium]
    reached = next((i for i, e in enumerate(candidates) if e.mean_return >= target), None)
    closest = min(candidates[: None if reached is None else reached + 1], key=lambda e: abs(e.mean_return - target))
    if reached is not None:
        return closest
    warnings.warn(
        f"{env_id}: no SAC evaluation within {budget.sac_steps_medium} steps reached the medium target return "
        f"{target:.1f}; using the closest one (step {closest.step}, return {closest.mean_return:.1f})",
        stacklevel=3,
    )
    return closest


class _SB3PolicyActor:
    """A policy for :func:`record_dataset` from an SB3 SAC policy (stochastic actions by default, as D4RL).

    The actions of ``policy.predict`` for one observation, bit for bit and drawing the same random numbers, without
    its checks and conversions (which cost more than the actor's forward pass here)."""

    def __init__(self, policy: Any, deterministic: bool) -> None:
        self.policy, self.deterministic = policy, deterministic

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        observations = torch.as_tensor(np.asarray(observation)).reshape(1, *self.policy.observation_space.shape)
        with torch.no_grad():
            squashed = self.policy.actor(observations, deterministic=self.deterministic)  # (1, A) in [-1, 1]
        return self.policy.unscale_action(squashed.numpy().reshape(self.policy.action_space.shape))


def _steps_note(steps: int) -> str:
    if steps >= D4RL_EXPERT_SAC_STEPS:
        return f"SB3 SAC trained for {steps} environment steps"
    return (
        f"a partially trained SB3 SAC policy ({steps} environment steps; D4RL's expert SAC is trained for "
        f"{D4RL_EXPERT_SAC_STEPS}), so not a D4RL-grade expert"
    )


# ---------------------------------------------------------------------------------------------- levels


@dataclass(frozen=True)
class LevelJob:
    """What every level's maker needs: the dataset to write and the SAC run and references behind it."""

    env_id: str
    dataset_id: str
    path: Path
    budget: DatasetBudget
    workdir: str | os.PathLike[str] | None
    run_dir: Path
    refs: tuple[float, float]
    show_progress: bool

    @property
    def run_note(self) -> str:
        """The SAC run's arguments beyond SB3's defaults, for the dataset's description (empty when none)."""
        return f" (SB3 SAC arguments {json.dumps(self.budget.sac_kwargs)})" if self.budget.sac_kwargs else ""

    @property
    def ref_note(self) -> str:
        """Where the reference scores come from, for the dataset's description."""
        in_d4rl = self.env_id in D4RL_REFERENCE_SCORES
        return "D4RL reference scores" if in_d4rl else "reference scores measured here"

    def record(self, policy: Any, seed: int, algorithm_name: str, description: str) -> minari.MinariDataset:
        """Record ``budget.dataset_steps`` transitions of ``policy`` into this job's dataset."""
        return record_dataset(
            self.env_id,
            policy,
            self.dataset_id,
            n_steps=self.budget.dataset_steps,
            seed=seed,
            ref_min_score=self.refs[0],
            ref_max_score=self.refs[1],
            algorithm_name=algorithm_name,
            description=description,
            overwrite=True,
            show_progress=self.show_progress,
            workers=self.budget.recording_workers,
        )

    def record_level_policy(
        self, level: LocomotionLevel, trained: Callable[[LevelJob], tuple[SACEvaluation, str]], seed: int
    ) -> minari.MinariDataset:
        """Record the stochastic actions of ``level``'s SAC policy: the shipped one where the budget allows it and
        one exists, else the snapshot that ``trained(self)`` picks from the SAC run (with a phrase describing it)."""
        shipped = shipped_policy(self.env_id, level) if self.budget.shipped_policies else None
        if shipped is not None:
            policy, about = shipped.load(), shipped.describe()
        else:
            evaluation, about = trained(self)
            about += self.run_note
            policy = load_sac_policy(self.run_dir, evaluation)
        description = f"D4RL-style {level} dataset for {self.env_id}: stochastic actions of {about}; {self.ref_note}."
        with torch.random.fork_rng(devices=[]):  # the CPU generator only: no CUDA context is started
            torch.default_generator.manual_seed(seed)  # SB3 samples the stochastic actions from it (on the CPU)
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return self.record(_SB3PolicyActor(policy, deterministic=False), seed, "SB3 SAC", description)
            finally:
                torch.set_num_threads(threads)


def _medium_about(job: LevelJob) -> tuple[SACEvaluation, str]:
    """The medium checkpoint's evaluation and a phrase describing it."""
    target = medium_target_return(*job.refs, job.budget.medium_target_fraction)
    evaluation = _medium_evaluation(job.env_id, job.run_dir, job.budget, target, job.show_progress)
    about = (
        f"SB3 SAC checkpoint at {evaluation.step} environment steps (deterministic evaluation return "
        f"{evaluation.mean_return:.1f}; medium target {target:.1f} = {job.budget.medium_target_fraction:.3g} of "
        f"the way from the random to the expert reference score)"
    )
    return evaluation, about


def _make_random(job: LevelJob) -> minari.MinariDataset:
    description = f"D4RL-style random dataset: uniformly random actions in {job.env_id}; {job.ref_note}."
    return job.record(None, job.budget.seed + 3, "uniform random policy", description)


def _trained_expert(job: LevelJob) -> tuple[SACEvaluation, str]:
    evaluation = _expert_evaluation(job.env_id, job.run_dir, job.budget, job.show_progress)
    return evaluation, f"{_steps_note(evaluation.step)} (deterministic evaluation return {evaluation.mean_return:.1f})"


def _trained_medium(job: LevelJob) -> tuple[SACEvaluation, str]:
    evaluation, checkpoint = _medium_about(job)
    return evaluation, f"the {checkpoint}"


def _make_expert(job: LevelJob) -> minari.MinariDataset:
    return job.record_level_policy("expert", _trained_expert, job.budget.seed + 1)


def _make_medium(job: LevelJob) -> minari.MinariDataset:
    return job.record_level_policy("medium", _trained_medium, job.budget.seed + 2)


def _make_medium_replay(job: LevelJob) -> minari.MinariDataset:
    from minari.data_collector.episode_buffer import EpisodeBuffer

    evaluation, about = _medium_about(job)
    episodes = sac_replay_episodes(job.run_dir, evaluation.step)
    buffers = [EpisodeBuffer(id=i, **episode) for i, episode in enumerate(episodes)]
    env = gymnasium.make(job.env_id)
    try:
        with written_aside(job.dataset_id), quiet_metadata_warnings():
            minari.create_dataset_from_buffers(
                job.dataset_id,
                buffers,
                env=env,
                algorithm_name="SB3 SAC",
                description=(
                    f"D4RL-style medium-replay dataset for {job.env_id}: the replay buffer of the SAC "
                    f"run{job.run_note} up to the {about}, including SAC's random warm-up steps; {job.ref_note}."
                ),
                ref_min_score=job.refs[0],
                ref_max_score=job.refs[1],
            )
    finally:
        env.close()
    return minari.load_dataset(job.dataset_id)


def _existing_or_new(job: LevelJob, level: LocomotionLevel) -> minari.MinariDataset:
    """The default-id dataset of ``level``, made first when it does not exist."""
    dataset_id = locomotion_dataset_id(job.env_id, level)
    if get_dataset_path(dataset_id).exists():
        return minari.load_dataset(dataset_id)
    return make_locomotion_dataset(
        job.env_id, level, budget=job.budget, workdir=job.workdir, show_progress=job.show_progress
    )


def _make_medium_expert(job: LevelJob) -> minari.MinariDataset:
    medium = _existing_or_new(job, "medium")
    expert = _existing_or_new(job, "expert")
    with written_aside(job.dataset_id):
        get_dataset_path(job.dataset_id).parent.mkdir(parents=True, exist_ok=True)  # Minari makes only the last
        dataset = minari.combine_datasets([medium, expert], job.dataset_id)
        dataset.storage.update_metadata(
            {
                "ref_min_score": job.refs[0],
                "ref_max_score": job.refs[1],
                "algorithm_name": "SB3 SAC",
                "description": (
                    f"D4RL-style medium-expert dataset for {job.env_id}: {medium.spec.dataset_id} followed by "
                    f"{expert.spec.dataset_id}; {job.ref_note}."
                ),
            }
        )
    return minari.load_dataset(job.dataset_id)


LEVEL_MAKERS: dict[str, Callable[[LevelJob], minari.MinariDataset]] = {
    "random": _make_random,
    "medium": _make_medium,
    "medium-replay": _make_medium_replay,
    "expert": _make_expert,
    "medium-expert": _make_medium_expert,
}
"""The maker of each level in :data:`LOCOMOTION_LEVELS`."""


def make_locomotion_dataset(
    env_id: str,
    level: LocomotionLevel,
    *,
    budget: DatasetBudget | None = None,
    workdir: str | os.PathLike[str] | None = None,
    dataset_id: str | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> minari.MinariDataset:
    """Make a D4RL-v2-style dataset for a Box-action environment with SB3 SAC and Minari.

    Levels (as D4RL made them):

    - ``random``: uniformly random actions, ``budget.dataset_steps`` transitions.
    - ``expert``: the SAC policy after ``budget.sac_steps_expert`` steps, ``dataset_steps`` transitions with
      its stochastic actions (under the CPU preset a partially trained SAC; the description says so).
    - ``medium``: the evaluated SAC checkpoint whose (deterministic) return is closest to
      :func:`medium_target_return` (``ref_min + medium_target_fraction * (ref_max - ref_min)``) among those up
      to the first that reaches it, within ``sac_steps_medium`` steps (else the closest one, with a warning);
      ``dataset_steps`` transitions.
    - ``medium-replay``: the SAC replay buffer up to that checkpoint (warm-up random actions included),
      split into episodes at dones, timeouts and resets.
    - ``medium-expert``: ``medium`` and ``expert`` combined (``minari.combine_datasets``; the components are
      made first when missing and reused when they exist).

    Under the cpu budget (``budget.shipped_policies``) ``medium`` and ``expert`` are recorded from the policy
    shipped with the package where one exists for the level (:mod:`~tt_agents.data_making.data_policies`:
    :func:`~tt_agents.data_making.data_policies.shipped_policies` lists them), without training: on the same
    machine the same seed gives the same episodes (another CPU's float32 kernels give other episodes of the same
    level). Otherwise medium and expert come from one cached,
    resumable SAC run per environment and seed in
    :func:`~tt_agents.data_making.sac.sac_run_dir` (``workdir``/ENV/seedS), so the levels share training: asking
    for ``medium`` first trains only until the medium target, ``expert`` later continues that run. Reference
    scores (``ref_min_score``/``ref_max_score``, for ``minari.get_normalized_score``) are D4RL's for Hopper,
    HalfCheetah and Walker2d (:data:`D4RL_REFERENCE_SCORES`); elsewhere the mean return of 100 random episodes
    and of the expert's evaluation, which means any level of such an environment trains the expert first.

    Args:
        env_id: a Gymnasium id with Box actions or a short name (``"hopper"``, ``"halfcheetah"``,
            ``"walker2d"``, ``"ant"``).
        level: one of :data:`LOCOMOTION_LEVELS`.
        budget: compute budget (default ``DatasetBudget.cpu()``).
        workdir: root of the SAC run cache (default :data:`~tt_agents.data_making.sac.DEFAULT_SAC_WORKDIR`).
        dataset_id: Minari id (default :func:`locomotion_dataset_id`, e.g. ``"tt-agents/hopper/medium-v0"``;
            note that ``InvertedPendulum-v5``'s ``expert`` default id is also the scripted expert's).
        overwrite: replace an existing dataset with this id (otherwise an error).
        show_progress: progress bars and a one-line summary of the written dataset.

    Returns:
        The written dataset.
    """
    env_id = resolve_env_id(env_id)
    if level not in LOCOMOTION_LEVELS:
        raise ValueError(f"level must be one of {LOCOMOTION_LEVELS}, got {level!r}")
    budget = budget or DatasetBudget.cpu()
    if budget.sac_kwargs is None:
        budget = replace(budget, sac_kwargs=shipped_sac_kwargs(env_id))
    dataset_id = dataset_id or locomotion_dataset_id(env_id, level)
    path = check_dataset_id(dataset_id, overwrite)
    check_box_actions(env_id)
    run_dir = sac_run_dir(env_id, budget.seed, workdir)
    refs = _reference_scores(env_id, run_dir, budget, show_progress)
    job = LevelJob(env_id, dataset_id, path, budget, workdir, run_dir, refs, show_progress)
    dataset = LEVEL_MAKERS[level](job)
    if show_progress:
        Console().print(str(summarize_dataset(dataset)))
    return dataset
