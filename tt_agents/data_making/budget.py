"""How much compute a D4RL-style locomotion dataset spends: :class:`DatasetBudget` and its presets."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

D4RL_EXPERT_SAC_STEPS = 1_000_000
"""Environment steps of the SAC policies behind D4RL's ``expert`` datasets."""


@dataclass(frozen=True)
class DatasetBudget:
    """How much compute :func:`~tt_agents.data_making.locomotion.make_locomotion_dataset` spends; :meth:`paper`
    and :meth:`cpu` are presets."""

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
    """SAC steps between evaluations; every evaluation keeps a copy of the policy, so the medium checkpoint can
    be picked among them."""
    checkpoint_every: int = 50_000
    """SAC steps between resumable checkpoints (model, optimizers and replay buffer)."""
    seed: int = 0
    """Seed of the SAC run (one cached run per environment and seed) and of the recordings."""
    shipped_policies: bool = False
    """Record ``medium`` and ``expert`` from the policy shipped with the package for that level where there is
    one (:mod:`~tt_agents.data_making.data_policies`: no SAC training; on one machine the same seed gives the
    same episodes); otherwise, and for ``medium-replay`` (the SAC run's own replay buffer), train."""
    recording_workers: int | None = None
    """``None``: record each level in one process, one random stream through the whole recording (how this
    project's datasets were recorded, so the cpu preset keeps it). An int: every episode has a noise seed of its
    own and this many processes record at once; the dataset is the same for any value (not the same as with
    ``None``). See :func:`~tt_agents.data_making.recording.record_dataset`."""
    sac_kwargs: dict[str, Any] | None = None
    """Extra keyword arguments for ``stable_baselines3.SAC`` (JSON-serialisable, e.g.
    ``{"policy_kwargs": {"net_arch": [64, 64]}}``), used as given (``{}``: SB3's defaults, which match D4RL's SAC:
    2x256 networks, lr 3e-4, batch 256, automatic entropy tuning). ``None``: the recipe of the policies shipped for
    the environment (:func:`~tt_agents.data_making.data_policies.shipped_sac_kwargs`; HalfCheetah-v5's warm up for
    10,000 random steps), so a SAC run trained here, and the ``medium-replay`` replay buffer, come from the same
    recipe as the shipped ``medium`` policy; SB3's defaults where nothing ships."""

    def __post_init__(self) -> None:
        for name in ("sac_steps_medium", "sac_steps_expert", "dataset_steps", "eval_episodes", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"DatasetBudget.{name} must be >= 1, got {getattr(self, name)}")
        if self.recording_workers is not None and self.recording_workers < 1:
            raise ValueError(f"DatasetBudget.recording_workers must be None or >= 1, got {self.recording_workers}")
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
        """D4RL's sizes: 1M SAC steps for the expert, 1M transitions per level, recorded by one process per core.

        Resumable, so the SAC run can be spread over several invocations.
        """
        return cls(
            sac_steps_medium=D4RL_EXPERT_SAC_STEPS,
            sac_steps_expert=D4RL_EXPERT_SAC_STEPS,
            dataset_steps=1_000_000,
            eval_episodes=10,
            eval_every=10_000,
            checkpoint_every=50_000,
            recording_workers=os.cpu_count() or 1,
        )

    @classmethod
    def cpu(cls) -> DatasetBudget:
        """Reduced settings for a laptop CPU, named as such.

        The "expert" is SAC after 200k steps, a partially trained policy, and its dataset description says so.
        The medium search is capped at 150k steps; each level records 100k transitions (a tenth of D4RL's);
        five episodes per evaluation and a checkpoint at every evaluation. Levels with a shipped policy
        (``shipped_policies``) are recorded from it without training.
        """
        return cls(
            sac_steps_medium=150_000,
            sac_steps_expert=200_000,
            dataset_steps=100_000,
            eval_episodes=5,
            eval_every=10_000,
            checkpoint_every=10_000,
            shipped_policies=True,
        )
