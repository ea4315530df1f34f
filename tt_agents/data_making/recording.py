"""Recording a policy into a local Minari dataset, and summarising a dataset's episodes.

Every dataset maker of :mod:`tt_agents.data_making` writes through here: :func:`check_dataset_id` validates the id
and refuses to replace an existing dataset unless asked, :func:`record_dataset` runs the policy under
``minari.DataCollector`` and writes the dataset (under ``MINARI_DATASETS_PATH``, default ``~/.minari/datasets``)
with its reference scores, so :func:`tt_agents.data_loading.load_episodes` and ``minari.get_normalized_score``
work on it offline.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import gymnasium
import minari
import numpy as np
from minari.dataset.minari_dataset import parse_dataset_id
from minari.storage import get_dataset_path

from .._io import make_progress, orphaned_staging
from .parallel_recording import make_env, record_episodes

Policy = Callable[[np.ndarray], np.ndarray]
"""Maps an observation to an action; a policy with a ``reset()`` method has it called at every episode start."""

_METADATA_WARNINGS = r"`(code_permalink|author|author_email|eval_env)` is set to None"


def check_dataset_id(dataset_id: str, overwrite: bool) -> Path:
    """The local path a new dataset ``dataset_id`` will be written to.

    Raises:
        ValueError: ``dataset_id`` is not a Minari id ``namespace/name-vN``.
        FileExistsError: a dataset with this id exists and ``overwrite`` is false.
    """
    try:
        parse_dataset_id(dataset_id)
    except (ValueError, TypeError):
        raise ValueError(
            f"malformed dataset id {dataset_id!r}; Minari ids look like 'namespace/name-vN', e.g. "
            "'tt-agents/invertedpendulum/expert-v0' (letters, digits, '-' and '_'; the version suffix is required)"
        ) from None
    path = get_dataset_path(dataset_id)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"Minari dataset {dataset_id!r} already exists at {path}; pass overwrite=True to replace it"
        )
    return path


_STAGING_PREFIX = ".tt_agents-dataset-"
_NAMESPACE_METADATA = "namespace_metadata.json"


@contextmanager
def written_aside(dataset_id: str) -> Iterator[None]:
    """Make the Minari dataset ``dataset_id`` written inside the block land in a staging folder of the datasets
    root, and swap it in for any dataset of that id when the block ends without error.

    An existing dataset stays until the new one is complete (a failed or killed write leaves it as it was), and
    Minari's own temporary folders land in the staging folder too. A staging folder left by a killed process is
    removed by the next write, which also puts back a dataset caught between the two renames of the swap. Inside
    the block ``MINARI_DATASETS_PATH`` names the staging folder; it is restored afterwards. Load the dataset
    again after the block (a dataset object made inside points into the staging folder).
    """
    root = get_dataset_path()
    _clean_interrupted_writes(root)
    staging = Path(tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{os.getpid()}-", dir=root))
    (staging / ".dataset_id").write_text(dataset_id)
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(staging)
    try:
        try:
            yield
        finally:
            if previous is None:
                del os.environ["MINARI_DATASETS_PATH"]
            else:
                os.environ["MINARI_DATASETS_PATH"] = previous
        _swap_in(staging, root, dataset_id)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap_in(staging: Path, root: Path, dataset_id: str) -> None:
    new, target = staging / dataset_id, root / dataset_id
    if not new.is_dir():
        raise RuntimeError(f"no dataset {dataset_id!r} was written")
    target.parent.mkdir(parents=True, exist_ok=True)
    namespace = Path(dataset_id).parent
    for part in (namespace, *namespace.parents):  # Minari's namespace files, where the root has none yet
        if (staging / part / _NAMESPACE_METADATA).is_file() and not (root / part / _NAMESPACE_METADATA).exists():
            shutil.copyfile(staging / part / _NAMESPACE_METADATA, root / part / _NAMESPACE_METADATA)
    if target.exists():
        os.replace(target, staging / ".replaced")
    os.replace(new, target)


def _clean_interrupted_writes(root: Path) -> None:
    """Remove the staging folders of writes whose process is gone, first putting back a dataset that a kill
    caught between the two renames of its swap."""
    for staging in orphaned_staging(root, _STAGING_PREFIX):
        replaced, id_file = staging / ".replaced", staging / ".dataset_id"
        if replaced.is_dir() and id_file.is_file() and not (root / id_file.read_text()).exists():
            os.replace(replaced, root / id_file.read_text())
        shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def quiet_metadata_warnings() -> Iterator[None]:
    """Silence Minari's warnings about optional metadata (author, code permalink, ...) left unset."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_METADATA_WARNINGS, category=UserWarning)
        yield


def _check_limits(
    n_episodes: int | None, n_steps: int | None, ref_min_score: float | None, ref_max_score: float | None
) -> None:
    if n_episodes is None and n_steps is None:
        raise ValueError("record_dataset: give n_episodes and/or n_steps")
    for name, value in (("n_episodes", n_episodes), ("n_steps", n_steps)):
        if value is not None and value < 1:
            raise ValueError(f"record_dataset: {name} must be >= 1, got {value}")
    if ref_min_score is not None and ref_max_score is None:
        raise ValueError("record_dataset: ref_min_score needs ref_max_score (Minari stores them together)")


def _run_episodes(
    collector: minari.DataCollector,
    policy: Policy | None,
    label: str,
    n_episodes: int | None,
    n_steps: int | None,
    seed: int,
    show_progress: bool,
) -> None:
    """Step ``policy`` in ``collector`` until either limit is reached, resetting the policy at every episode."""
    seeds = np.random.default_rng(seed)
    reset_policy = getattr(policy, "reset", None)
    episodes, steps, episode_return, returns = 0, 0, 0.0, []
    with make_progress(show=show_progress) as progress:
        task = progress.add_task(f"recording {label}", total=n_episodes if n_episodes is not None else n_steps)
        observation, _ = collector.reset(seed=seed)
        if reset_policy is not None:
            reset_policy()
        while True:
            action = collector.action_space.sample() if policy is None else policy(observation)
            action = np.asarray(action, dtype=collector.action_space.dtype)
            if isinstance(collector.action_space, gymnasium.spaces.Discrete):
                action = action.item()  # a plain int: some environments index tables with it (FrozenLake, Taxi)
            observation, reward, terminated, truncated, _ = collector.step(action)
            steps += 1
            episode_return += float(reward)
            if terminated or truncated:
                episodes += 1
                returns.append(episode_return)
                episode_return = 0.0
                progress.update(task, description=f"recording {label}: mean return {np.mean(returns):.1f}")
            progress.update(task, completed=episodes if n_episodes is not None else steps)
            if (n_episodes is not None and episodes >= n_episodes) or (n_steps is not None and steps >= n_steps):
                break
            if terminated or truncated:
                observation, _ = collector.reset(seed=int(seeds.integers(2**31)))
                if reset_policy is not None:
                    reset_policy()


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
    workers: int | None = None,
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
            seed is stored in the dataset); also seeds the action space (with ``workers``: each episode's noise
            seed, see below).
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
        workers: ``None`` (default): one process whose policy and action space draw one random stream through
            the whole recording (how this project's datasets were recorded). An int: every episode draws from a
            noise seed of its own (:func:`~tt_agents.data_making.parallel_recording.record_episodes`; torch's
            global generator and the action space are seeded with it), and ``workers`` processes record
            episodes at once: the dataset is the same for every value, but not the same as with ``None``. The
            policy's randomness must then come from those two sources, and with several workers the policy must
            be picklable and ``env_id`` an id or an environment with a spec; the workers are started by
            ``multiprocessing``'s "spawn", so a script that records with them needs the usual
            ``if __name__ == "__main__":`` guard.

    Returns:
        The written dataset.
    """
    _check_limits(n_episodes, n_steps, ref_min_score, ref_max_score)
    check_dataset_id(dataset_id, overwrite)
    metadata = dict(
        eval_env=eval_env,
        algorithm_name=algorithm_name,
        description=description,
        ref_min_score=ref_min_score,
        ref_max_score=ref_max_score,
    )
    if workers is not None:
        spec = _sendable_env(env_id)
        episodes = record_episodes(
            spec,
            policy,
            workers=workers,
            n_episodes=n_episodes,
            n_steps=n_steps,
            seed=seed,
            max_episode_steps=max_episode_steps,
            label=dataset_id,
            show_progress=show_progress,
        )
        made = make_env(spec, max_episode_steps)
        try:
            with written_aside(dataset_id), quiet_metadata_warnings():
                minari.create_dataset_from_buffers(dataset_id, episodes, env=made, **metadata)
        finally:
            made.close()
        return minari.load_dataset(dataset_id)

    owns_env = isinstance(env_id, str)
    if isinstance(env_id, str):
        env = make_env(env_id, max_episode_steps)
    else:
        env = env_id if max_episode_steps is None else gymnasium.wrappers.TimeLimit(env_id, max_episode_steps)
    with written_aside(dataset_id):
        collector = minari.DataCollector(env, record_infos=False)
        collector.action_space.seed(seed)
        _run_episodes(collector, policy, dataset_id, n_episodes, n_steps, seed, show_progress)
        with quiet_metadata_warnings():
            collector.create_dataset(dataset_id=dataset_id, **metadata)
        if owns_env:
            collector.close()
    return minari.load_dataset(dataset_id)


def _sendable_env(env_id: str | gymnasium.Env) -> str | gymnasium.envs.registration.EnvSpec:
    """What worker processes make the environment from: its id, or an environment's spec."""
    if isinstance(env_id, str):
        return env_id
    if env_id.spec is None:
        raise ValueError("record_dataset(workers=...) needs a Gymnasium id or an environment with a spec")
    return env_id.spec


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
