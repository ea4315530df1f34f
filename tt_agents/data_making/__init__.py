"""Offline-RL datasets made locally, written in Minari format.

:func:`record_dataset` runs a policy in a Gymnasium environment under ``minari.DataCollector`` and writes a
local Minari dataset (under ``MINARI_DATASETS_PATH``, default ``~/.minari/datasets``) with reference
scores, so :func:`tt_agents.data_loading.load_episodes` and ``minari.get_normalized_score`` work on it offline.

:func:`inverted_pendulum_policy` is a scripted linear-feedback expert for ``InvertedPendulum-v5`` and
:func:`make_inverted_pendulum_dataset` records an ``expert`` or a ``mixed``-quality dataset with it in a few
seconds: the offline demo and the tests use these.

:func:`make_locomotion_dataset` makes D4RL-v2-style datasets (``random``, ``medium``, ``medium-replay``,
``expert``, ``medium-expert``) for MuJoCo locomotion and any Box-action environment: an SB3 SAC run
(:func:`train_sac`: resumable checkpoints, an evaluated policy snapshot every ``eval_every`` steps, cached per
environment and seed) provides the policies and the replay buffer, and :class:`DatasetBudget` sets the compute
(:meth:`DatasetBudget.paper` for D4RL's sizes, :meth:`DatasetBudget.cpu` for about an hour on a laptop CPU).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import gymnasium
import minari
import numpy as np
import torch
from minari.dataset.minari_dataset import parse_dataset_id
from minari.storage import get_dataset_path
from rich.console import Console
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
DRIFTING_GAINS = (0.0, 20.0, 0.0, 2.0)
"""Gains of the ``mixed`` dataset's poor controller: it balances the pole but ignores the cart, which drifts
until the pole falls (return about 270, measured over 10 seeds)."""
_DRIFTING_NOISE = 0.3
_EXPERT_EVERY = 4
_DEFAULT_EPISODES = {"expert": 50, "mixed": 160}
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
    eval_env: str | gymnasium.Env | gymnasium.envs.registration.EnvSpec | None = None,
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
        eval_env: the environment to evaluate on (an id, an environment or an ``EnvSpec``), stored in the
            dataset for ``dataset.recover_environment(eval_env=True)`` (default: the recording environment's);
            Minari's estimate of a missing ``ref_min_score`` runs on it.
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
            eval_env=eval_env,
            algorithm_name=algorithm_name,
            description=description,
            ref_min_score=ref_min_score,
            ref_max_score=ref_max_score,
        )
    if owns_env:
        collector.close()
    return dataset


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
    """Record an ``InvertedPendulum-v5`` dataset with the scripted expert (a few seconds).

    Args:
        level: ``"expert"``: the controller with action noise of std 0.2 (every return 1000);
            ``"mixed"``: one episode in four from that expert, the others from a controller that lets the cart
            drift off the rail (returns about 270), so the data's most likely behaviour is poor.
        n_episodes: episodes to record (default 50 for ``expert``, 160 for ``mixed``; a few seconds each).
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


# ------------------------------------------------------------------------------------------------------------
# D4RL-style locomotion datasets: SB3 SAC trained to a level, recorded with minari.DataCollector
# ------------------------------------------------------------------------------------------------------------

LocomotionLevel = Literal["random", "medium", "medium-replay", "expert", "medium-expert"]
LOCOMOTION_LEVELS: tuple[str, ...] = ("random", "medium", "medium-replay", "expert", "medium-expert")
"""The D4RL v2 dataset levels :func:`make_locomotion_dataset` makes."""

SHORT_ENV_NAMES: dict[str, str] = {
    "hopper": "Hopper-v5",
    "halfcheetah": "HalfCheetah-v5",
    "walker2d": "Walker2d-v5",
    "ant": "Ant-v5",
}
"""Short names accepted wherever an environment id is (``"hopper"`` → ``"Hopper-v5"``)."""

D4RL_REFERENCE_SCORES: dict[str, tuple[float, float]] = {
    "Hopper-v5": (-20.272305, 3234.3),
    "HalfCheetah-v5": (-280.178953, 12135.0),
    "Walker2d-v5": (1.629008, 4592.3),
}
"""D4RL's (random, expert) reference returns, used as ``ref_min_score``/``ref_max_score`` for the MuJoCo
environments whose task matches D4RL's (so normalized scores compare with the paper's tables). ``Ant-v5`` is
left out: its observation (contact forces) and reward differ from D4RL's ``Ant-v2``. Other environments get
references measured here (random policy, and the SAC expert of the run)."""

D4RL_EXPERT_SAC_STEPS = 1_000_000
"""Environment steps of the SAC policies behind D4RL's ``expert`` datasets."""

_RANDOM_REFERENCE_EPISODES = 100
_CHECKPOINT, _CHECKPOINT_NEW, _CHECKPOINT_OLD = "checkpoint", "checkpoint.new", "checkpoint.old"
_EVALUATIONS, _RUN_INFO, _RANDOM_RETURN, _POLICIES = "evaluations.json", "run.json", "random_return.json", "policies"
DEFAULT_SAC_WORKDIR = "~/.cache/tt_agents/sac"
"""Where :func:`make_locomotion_dataset` caches its SAC runs (one sub-folder per environment and seed)."""


@dataclass(frozen=True)
class DatasetBudget:
    """How much compute :func:`make_locomotion_dataset` spends; :meth:`paper` and :meth:`cpu` are presets."""

    sac_steps_medium: int
    """Most SAC environment steps spent looking for the ``medium`` policy: training stops at the first
    evaluation whose return reaches the medium target (see ``medium_target_fraction``) or here, whichever
    comes first. The ``medium-replay`` dataset is the replay buffer up to the chosen medium checkpoint."""
    sac_steps_expert: int
    """SAC environment steps of the ``expert`` policy (D4RL: 1M). Must be >= ``sac_steps_medium``: medium and
    expert come from the same (resumable, cached) SAC run."""
    medium_target_fraction: float = 1 / 3
    """The medium policy is the evaluated checkpoint closest to ``ref_min + fraction * (ref_max - ref_min)``
    among those up to the first that reaches it (D4RL: "about one third of the expert"; written relative to
    the random return so it also works for negative rewards; for Hopper it is ~1065 with D4RL's references)."""
    dataset_steps: int = 1_000_000
    """Transitions recorded for the ``random``, ``medium`` and ``expert`` levels (D4RL: 1M; ``medium-expert``
    has twice this, ``medium-replay`` has as many as the SAC run took to reach medium)."""
    eval_episodes: int = 10
    """Episodes per SAC evaluation (deterministic actions, the same reset seeds each time)."""
    eval_every: int = 10_000
    """SAC steps between evaluations; every evaluation keeps a copy of the policy (1-2 MB for MuJoCo sizes),
    so the medium checkpoint can be picked among them."""
    checkpoint_every: int = 50_000
    """SAC steps between resumable checkpoints (model, optimizers and replay buffer)."""
    seed: int = 0
    """Seed of the SAC run (one cached run per environment and seed) and of the recordings."""
    sac_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for ``stable_baselines3.SAC`` (JSON-serialisable, e.g.
    ``{"policy_kwargs": {"net_arch": [64, 64]}}``); SB3's defaults otherwise (they match D4RL's SAC:
    2x256 networks, lr 3e-4, batch 256, automatic entropy tuning)."""

    def __post_init__(self) -> None:
        for name in ("sac_steps_medium", "sac_steps_expert", "dataset_steps", "eval_episodes", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"DatasetBudget.{name} must be >= 1, got {getattr(self, name)}")
        if self.checkpoint_every < 1:
            raise ValueError(f"DatasetBudget.checkpoint_every must be >= 1, got {self.checkpoint_every}")
        if self.sac_steps_medium > self.sac_steps_expert:
            raise ValueError(
                f"DatasetBudget.sac_steps_medium ({self.sac_steps_medium}) must be <= sac_steps_expert "
                f"({self.sac_steps_expert}): medium and expert come from the same SAC run"
            )
        if not 0.0 < self.medium_target_fraction < 1.0:
            raise ValueError(
                f"DatasetBudget.medium_target_fraction must be in (0, 1), got {self.medium_target_fraction}"
            )
        try:
            json.dumps(self.sac_kwargs)
        except TypeError as exc:
            raise ValueError(f"DatasetBudget.sac_kwargs must be JSON-serialisable: {exc}") from None

    @classmethod
    def paper(cls) -> DatasetBudget:
        """D4RL's sizes: 1M SAC steps for the expert, 1M transitions per level.

        About 3.5 h of SAC for Hopper on one CPU core (~130 s per 10k steps) plus ~10 min of recording per
        level; resumable, so it can be spread over several runs.
        """
        return cls(
            sac_steps_medium=D4RL_EXPERT_SAC_STEPS,
            sac_steps_expert=D4RL_EXPERT_SAC_STEPS,
            dataset_steps=1_000_000,
            eval_episodes=10,
            eval_every=10_000,
            checkpoint_every=50_000,
        )

    @classmethod
    def cpu(cls) -> DatasetBudget:
        """About an hour on a 2-core CPU for Hopper ``medium`` + ``medium-replay`` + ``expert``.

        Reduced settings, honestly named: the "expert" is SAC after 200k steps, a partially trained policy,
        and its dataset description says so. The medium search is capped at 150k steps; each level records
        100k transitions (a tenth of D4RL's). Time on a 2-core CPU, one torch thread: SAC ~125-140 s per 10k
        steps (so ~45 min for 200k), recording ~1.5k steps/s (under 2 min per 100k-step level), evaluations and
        checkpoints ~1-2 min in all.

        Measured on Hopper-v5 (seed 0; the SAC run resumed across invocations): deterministic evaluation
        returns 728 at 100k, 901 at 110k, 1892 at 140k, 1192 at 150k, 2785 at 190k and 2045 at 200k steps
        (SAC's return at this stage swings between evaluations). ``medium`` is the 110k checkpoint (closest to
        the target ~1065 among those up to 140k, the first to reach it): mean return of the recorded data
        914.9 (normalized 28.7); ``expert`` (200k): 1972.8 (61.2), so the medium data has 0.46 of this
        expert's return and 0.29 of D4RL's expert reference; ``medium-replay`` 110k transitions (score
        11.8), ``medium-expert`` 39.3.
        """
        return cls(
            sac_steps_medium=150_000,
            sac_steps_expert=200_000,
            dataset_steps=100_000,
            eval_episodes=5,
            eval_every=10_000,
            checkpoint_every=10_000,
        )


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


def locomotion_dataset_id(env_id: str, level: str) -> str:
    """The default Minari id of a level: ``"Hopper-v5", "medium"`` → ``"tt-agents/hopper/medium-v0"``."""
    if level not in LOCOMOTION_LEVELS:
        raise ValueError(f"level must be one of {LOCOMOTION_LEVELS}, got {level!r}")
    name = resolve_env_id(env_id).split("/")[-1]
    name = re.sub(r"-v\d+$", "", name).lower()
    name = re.sub(r"[^a-z0-9_-]", "", name)
    return f"tt-agents/{name}/{level}-v0"


def sac_run_dir(env_id: str, seed: int = 0, workdir: str | os.PathLike[str] | None = None) -> Path:
    """The folder of the cached SAC run for ``env_id`` and ``seed`` under ``workdir``."""
    root = Path(workdir if workdir is not None else DEFAULT_SAC_WORKDIR).expanduser()
    return root / resolve_env_id(env_id).replace("/", "__") / f"seed{seed}"


def _write_json_atomic(path: Path, value: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1))
    os.replace(tmp, path)


def read_evaluations(workdir: str | os.PathLike[str]) -> list[SACEvaluation]:
    """The evaluations of the SAC run in ``workdir`` (empty before the first one), in step order."""
    path = Path(workdir).expanduser() / _EVALUATIONS
    if not path.exists():
        return []
    return [SACEvaluation(**entry) for entry in json.loads(path.read_text())]


def load_sac_policy(workdir: str | os.PathLike[str], evaluation: SACEvaluation) -> Any:
    """The SB3 ``SACPolicy`` snapshot of ``evaluation`` (on CPU); ``policy.predict(obs, deterministic=...)``."""
    from stable_baselines3.sac.policies import SACPolicy

    return SACPolicy.load(str(Path(workdir).expanduser() / evaluation.policy), device="cpu")


def _check_box_actions(env_id: str) -> None:
    env = gymnasium.make(env_id)
    try:
        space = env.action_space
    finally:
        env.close()
    if not isinstance(space, gymnasium.spaces.Box):
        raise ValueError(f"{env_id} has action space {space}; SAC datasets need continuous (Box) actions")


def _find_checkpoint(workdir: Path) -> Path | None:
    """The latest complete checkpoint folder (``checkpoint.old`` covers a crash in the middle of a swap)."""
    for name in (_CHECKPOINT, _CHECKPOINT_OLD):
        folder = workdir / name
        if all((folder / file).exists() for file in ("model.zip", "replay_buffer.pkl", "state.json")):
            return folder
    return None


def _grow_replay_buffer(buffer: Any, size: int) -> None:
    """Enlarge an SB3 ``ReplayBuffer`` that has not wrapped yet, so that a longer run keeps every transition."""
    if size <= buffer.buffer_size or (buffer.full and buffer.pos != 0):
        return  # big enough, or wrapped already (the earliest transitions are gone)
    if buffer.full:  # filled exactly once: pos wrapped to 0
        buffer.pos, buffer.full = buffer.buffer_size, False
    for name in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
        array = getattr(buffer, name, None)
        if array is None:
            continue
        grown = np.zeros((size, *array.shape[1:]), dtype=array.dtype)
        grown[: buffer.pos] = array[: buffer.pos]
        setattr(buffer, name, grown)
    buffer.buffer_size = size


def _progress_callback(progress: Progress, task: Any) -> Any:
    """An SB3 callback that moves the progress bar every 100 steps (SB3 is imported only when training)."""
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
    relative = f"{_POLICIES}/step_{step:09d}.pt"
    (workdir / _POLICIES).mkdir(exist_ok=True)
    model.policy.save(str(workdir / relative))
    evaluation = SACEvaluation(step, float(np.mean(returns)), float(np.std(returns)), relative)
    evaluations.append(evaluation)
    _write_json_atomic(workdir / _EVALUATIONS, [asdict(e) for e in evaluations])
    return evaluation


def _save_checkpoint(model: Any, workdir: Path) -> None:
    """Model + replay buffer into ``checkpoint/``, swapped in atomically (a crash leaves one complete copy)."""
    new, current, old = (workdir / name for name in (_CHECKPOINT_NEW, _CHECKPOINT, _CHECKPOINT_OLD))
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir()
    model.save(new / "model.zip")
    model.save_replay_buffer(new / "replay_buffer.pkl")
    _write_json_atomic(new / "state.json", {"num_timesteps": int(model.num_timesteps)})
    shutil.rmtree(old, ignore_errors=True)
    if current.exists():
        current.rename(old)
    new.rename(current)
    shutil.rmtree(old, ignore_errors=True)


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
        checkpoint/            model.zip (SB3 ``save``) + replay_buffer.pkl, every ``checkpoint_every`` steps
        evaluations.json       [{step, mean_return, std_return, policy}] (see :func:`read_evaluations`)
        policies/step_*.pt     the policy at each evaluation (see :func:`load_sac_policy`)

    Training runs as ``model.learn`` calls up to the next evaluation or checkpoint (``reset_num_timesteps=False``,
    so episodes continue across calls and a checkpoint's replay buffer holds exactly its step count of
    transitions). A rerun loads the last checkpoint (``SAC.load`` + ``load_replay_buffer``) and continues;
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
    from stable_baselines3 import SAC
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    if total_steps < 1 or eval_every < 1 or eval_episodes < 1 or checkpoint_every < 1:
        raise ValueError("train_sac: total_steps, eval_every, eval_episodes and checkpoint_every must be >= 1")
    env_id = resolve_env_id(env_id)
    _check_box_actions(env_id)
    workdir = Path(workdir).expanduser()
    workdir.mkdir(parents=True, exist_ok=True)
    sac_kwargs = dict(sac_kwargs or {})
    run_info = {"env_id": env_id, "seed": seed, "sac_kwargs": sac_kwargs}
    info_path = workdir / _RUN_INFO
    if info_path.exists():
        saved = json.loads(info_path.read_text())
        if saved != json.loads(json.dumps(run_info)):
            raise ValueError(
                f"{workdir} holds a SAC run with {saved}, not {run_info}; use another workdir (or delete it)"
            )
    else:
        _write_json_atomic(info_path, run_info)

    evaluations = read_evaluations(workdir)
    if target_return is not None and any(e.mean_return >= target_return for e in evaluations):
        return workdir

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    env = gymnasium.make(env_id)
    eval_env = DummyVecEnv([lambda: Monitor(gymnasium.make(env_id))])
    try:
        checkpoint = _find_checkpoint(workdir)
        if checkpoint is not None:
            model = SAC.load(checkpoint / "model.zip", env=env, device="cpu")
            model.load_replay_buffer(checkpoint / "replay_buffer.pkl")
            _grow_replay_buffer(model.replay_buffer, buffer_size or total_steps)
            model.set_random_seed(seed + model.num_timesteps)
            stale = [e for e in evaluations if e.step > model.num_timesteps]
            for evaluation in stale:
                (workdir / evaluation.policy).unlink(missing_ok=True)
            evaluations = [e for e in evaluations if e.step <= model.num_timesteps]
            _write_json_atomic(workdir / _EVALUATIONS, [asdict(e) for e in evaluations])
        else:
            if evaluations:  # evaluations without any checkpoint: a run killed before its first checkpoint
                shutil.rmtree(workdir / _POLICIES, ignore_errors=True)
                evaluations = []
                (workdir / _EVALUATIONS).unlink()
            kwargs = {"buffer_size": buffer_size or total_steps, **copy.deepcopy(sac_kwargs)}  # SB3 edits them
            model = SAC("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **kwargs)
        start = model.num_timesteps
        if start >= total_steps:
            return workdir

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, disable=not show_progress) as progress:
            task = progress.add_task(f"SAC {env_id}", total=total_steps, completed=start)
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
                    evaluation = _evaluate_and_snapshot(
                        model, eval_env, eval_episodes, seed + 10_000, workdir, evaluations
                    )
                    reached = target_return is not None and evaluation.mean_return >= target_return
                    progress.update(
                        task,
                        description=f"SAC {env_id}: return {evaluation.mean_return:.1f} ± "
                        f"{evaluation.std_return:.1f} at {step}",
                    )
                if step % checkpoint_every == 0 or step >= total_steps or reached:
                    _save_checkpoint(model, workdir)
                progress.update(task, completed=step)
                if reached:
                    break
    finally:
        torch.set_num_threads(threads)
        env.close()
        eval_env.close()
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


def _sac_replay_episodes(workdir: Path, n_steps: int) -> list[dict[str, np.ndarray]]:
    """The first ``n_steps`` transitions of the run's replay buffer as episodes (actions unscaled)."""
    from stable_baselines3.common.save_util import load_from_pkl

    checkpoint = _find_checkpoint(workdir)
    if checkpoint is None:
        raise FileNotFoundError(f"no SAC checkpoint in {workdir}")
    buffer = load_from_pkl(checkpoint / "replay_buffer.pkl")
    if buffer.n_envs != 1:
        raise ValueError(f"the replay buffer in {checkpoint} has {buffer.n_envs} envs; expected 1")
    run_steps = json.loads((checkpoint / "state.json").read_text())["num_timesteps"]
    if run_steps > buffer.buffer_size or run_steps < n_steps:
        raise ValueError(
            f"the replay buffer in {checkpoint} has size {buffer.buffer_size} for a run of {run_steps} steps, but its "
            f"first {n_steps} transitions are needed in order; rerun in a fresh workdir with buffer_size >= the SAC "
            "steps"
        )
    space = buffer.action_space
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    scaled = buffer.actions[:n_steps, 0].astype(np.float64)  # (N, A) in [-1, 1]: SB3 stores scaled actions
    actions = np.clip(low + 0.5 * (scaled + 1.0) * (high - low), low, high).astype(space.dtype)
    return replay_buffer_episodes(
        buffer.observations[:n_steps, 0],
        buffer.next_observations[:n_steps, 0],
        actions,
        buffer.rewards[:n_steps, 0],
        buffer.dones[:n_steps, 0],
        buffer.timeouts[:n_steps, 0],
    )


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
    workdir.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(path, {"mean_return": float(np.mean(returns)), "episodes": _RANDOM_REFERENCE_EPISODES})
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


def medium_target_return(ref_min: float, ref_max: float, fraction: float) -> float:
    """``ref_min + fraction * (ref_max - ref_min)``: the return a ``medium`` policy is trained to."""
    return ref_min + fraction * (ref_max - ref_min)


def _medium_evaluation(
    env_id: str, workdir: Path, budget: DatasetBudget, target: float, show_progress: bool
) -> SACEvaluation:
    """The evaluation closest to ``target`` among those up to the first that reaches it (within
    ``sac_steps_medium``): SAC returns jump between evaluations, and the first policy past the target can be far
    past it (Hopper: 773 at 130k steps, 1892 at 140k, for a target of 1065)."""
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
    """A policy for :func:`record_dataset` from an SB3 policy (stochastic actions by default, as D4RL)."""

    def __init__(self, policy: Any, deterministic: bool) -> None:
        self.policy, self.deterministic = policy, deterministic

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        return self.policy.predict(observation, deterministic=self.deterministic)[0]


def _steps_note(steps: int) -> str:
    if steps >= D4RL_EXPERT_SAC_STEPS:
        return f"SB3 SAC trained for {steps} environment steps"
    return (
        f"a partially trained SB3 SAC policy ({steps} environment steps; D4RL's expert SAC is trained for "
        f"{D4RL_EXPERT_SAC_STEPS}), so not a D4RL-grade expert"
    )


def _record_sac_policy(
    env_id: str,
    workdir: Path,
    evaluation: SACEvaluation,
    dataset_id: str,
    budget: DatasetBudget,
    refs: tuple[float, float],
    description: str,
    seed: int,
    show_progress: bool,
) -> minari.MinariDataset:
    policy = load_sac_policy(workdir, evaluation)
    with torch.random.fork_rng():
        torch.manual_seed(seed)  # SB3 samples the stochastic actions from torch's global generator
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return record_dataset(
                env_id,
                _SB3PolicyActor(policy, deterministic=False),
                dataset_id,
                n_steps=budget.dataset_steps,
                seed=seed,
                ref_min_score=refs[0],
                ref_max_score=refs[1],
                algorithm_name="SB3 SAC",
                description=description,
                overwrite=True,
                show_progress=show_progress,
            )
        finally:
            torch.set_num_threads(threads)


def _existing_or_new(
    env_id: str, level: str, budget: DatasetBudget, workdir: str | os.PathLike[str] | None, show_progress: bool
) -> minari.MinariDataset:
    dataset_id = locomotion_dataset_id(env_id, level)
    if get_dataset_path(dataset_id).exists():
        return minari.load_dataset(dataset_id)
    return make_locomotion_dataset(env_id, level, budget=budget, workdir=workdir, show_progress=show_progress)  # type: ignore[arg-type]


@dataclass(frozen=True)
class DatasetSummary:
    """Episode statistics of a dataset (see :func:`summarize_dataset`)."""

    dataset_id: str
    total_episodes: int
    total_steps: int
    mean_return: float
    std_return: float
    normalized_score: float | None
    """Mean of ``minari.get_normalized_score`` over the episodes, x100 (D4RL's scale); ``None`` without
    reference scores."""

    def __str__(self) -> str:
        score = "n/a" if self.normalized_score is None else f"{self.normalized_score:.1f}"
        return (
            f"{self.dataset_id}: {self.total_episodes} episodes, {self.total_steps} steps, return "
            f"{self.mean_return:.1f} ± {self.std_return:.1f}, normalized score {score}"
        )


def summarize_dataset(dataset: minari.MinariDataset | str) -> DatasetSummary:
    """Episodes, steps, mean ± std episode return and normalized score (x100) of a Minari dataset."""
    if isinstance(dataset, str):
        dataset = minari.load_dataset(dataset)
    returns = np.array([float(np.sum(episode.rewards)) for episode in dataset.iterate_episodes()])
    metadata = dataset.storage.metadata
    normalized = None
    if metadata.get("ref_min_score") is not None and metadata.get("ref_max_score") is not None and len(returns):
        normalized = 100.0 * float(np.mean(minari.get_normalized_score(dataset, returns)))
    return DatasetSummary(
        dataset_id=dataset.spec.dataset_id,
        total_episodes=int(dataset.total_episodes),
        total_steps=int(dataset.total_steps),
        mean_return=float(returns.mean()) if len(returns) else float("nan"),
        std_return=float(returns.std()) if len(returns) else float("nan"),
        normalized_score=normalized,
    )


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

    Medium and expert come from one cached, resumable SAC run per environment and seed in
    :func:`sac_run_dir` (``workdir``/ENV/seedS), so the levels share training: asking for ``medium`` first
    trains only until the medium target, ``expert`` later continues that run. Reference scores
    (``ref_min_score``/``ref_max_score``, for ``minari.get_normalized_score``) are D4RL's for Hopper,
    HalfCheetah and Walker2d (:data:`D4RL_REFERENCE_SCORES`); elsewhere the mean return of 100 random episodes
    and of the expert's evaluation, which means any level of such an environment trains the expert first.

    Args:
        env_id: a Gymnasium id with Box actions or a short name (``"hopper"``, ``"halfcheetah"``,
            ``"walker2d"``, ``"ant"``).
        level: one of :data:`LOCOMOTION_LEVELS`.
        budget: compute budget (default :meth:`DatasetBudget.cpu`).
        workdir: root of the SAC run cache (default :data:`DEFAULT_SAC_WORKDIR`).
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
    dataset_id = dataset_id or locomotion_dataset_id(env_id, level)
    try:
        parse_dataset_id(dataset_id)
    except (ValueError, TypeError):
        raise ValueError(f"malformed dataset id {dataset_id!r}; Minari ids look like 'namespace/name-vN'") from None
    path = get_dataset_path(dataset_id)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"Minari dataset {dataset_id!r} already exists at {path}; pass overwrite=True to replace it"
        )
    _check_box_actions(env_id)
    run_dir = sac_run_dir(env_id, budget.seed, workdir)
    refs = _reference_scores(env_id, run_dir, budget, show_progress)
    ref_note = "D4RL reference scores" if env_id in D4RL_REFERENCE_SCORES else "reference scores measured here"

    if level == "random":
        dataset = record_dataset(
            env_id,
            None,
            dataset_id,
            n_steps=budget.dataset_steps,
            seed=budget.seed + 3,
            ref_min_score=refs[0],
            ref_max_score=refs[1],
            algorithm_name="uniform random policy",
            description=f"D4RL-style random dataset: uniformly random actions in {env_id}; {ref_note}.",
            overwrite=True,
            show_progress=show_progress,
        )
    elif level == "expert":
        evaluation = _expert_evaluation(env_id, run_dir, budget, show_progress)
        description = (
            f"D4RL-style expert dataset for {env_id}: stochastic actions of {_steps_note(evaluation.step)} "
            f"(deterministic evaluation return {evaluation.mean_return:.1f}); {ref_note}."
        )
        dataset = _record_sac_policy(
            env_id, run_dir, evaluation, dataset_id, budget, refs, description, budget.seed + 1, show_progress
        )
    elif level in ("medium", "medium-replay"):
        target = medium_target_return(*refs, budget.medium_target_fraction)
        evaluation = _medium_evaluation(env_id, run_dir, budget, target, show_progress)
        about = (
            f"SB3 SAC checkpoint at {evaluation.step} environment steps (deterministic evaluation return "
            f"{evaluation.mean_return:.1f}; medium target {target:.1f} = {budget.medium_target_fraction:.3g} of "
            f"the way from the random to the expert reference score)"
        )
        if level == "medium":
            description = f"D4RL-style medium dataset for {env_id}: stochastic actions of the {about}; {ref_note}."
            dataset = _record_sac_policy(
                env_id, run_dir, evaluation, dataset_id, budget, refs, description, budget.seed + 2, show_progress
            )
        else:
            from minari.data_collector.episode_buffer import EpisodeBuffer

            episodes = _sac_replay_episodes(run_dir, evaluation.step)
            buffers = [EpisodeBuffer(id=i, **episode) for i, episode in enumerate(episodes)]
            if path.exists():
                shutil.rmtree(path)
            env = gymnasium.make(env_id)
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=_METADATA_WARNINGS, category=UserWarning)
                    dataset = minari.create_dataset_from_buffers(
                        dataset_id,
                        buffers,
                        env=env,
                        algorithm_name="SB3 SAC",
                        description=(
                            f"D4RL-style medium-replay dataset for {env_id}: the replay buffer of the SAC run up to "
                            f"the {about}, including SAC's random warm-up steps; {ref_note}."
                        ),
                        ref_min_score=refs[0],
                        ref_max_score=refs[1],
                    )
            finally:
                env.close()
    else:  # medium-expert
        medium = _existing_or_new(env_id, "medium", budget, workdir, show_progress)
        expert = _existing_or_new(env_id, "expert", budget, workdir, show_progress)
        if path.exists():
            shutil.rmtree(path)
        dataset = minari.combine_datasets([medium, expert], dataset_id)
        dataset.storage.update_metadata(
            {
                "ref_min_score": refs[0],
                "ref_max_score": refs[1],
                "algorithm_name": "SB3 SAC",
                "description": (
                    f"D4RL-style medium-expert dataset for {env_id}: {medium.spec.dataset_id} followed by "
                    f"{expert.spec.dataset_id}; {ref_note}."
                ),
            }
        )
    if show_progress:
        Console().print(str(summarize_dataset(dataset)))
    return dataset
