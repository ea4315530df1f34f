"""The data policies shipped with the package: the SAC actors that define this project's locomotion levels.

A locomotion level is the policy that records it. Training that SAC policy takes the better part of an hour on a
CPU, so the policies behind the project's own datasets ship with the package (actor weights as safetensors, a
JSON description, loaded without unpickling, about 300 KB each), and
:func:`~tt_agents.data_making.locomotion.make_locomotion_dataset` records from them under the cpu budget: the same
seed gives, in minutes, the same episodes on the same machine (on another CPU, other episodes of the same level:
the actor's float32 arithmetic follows the CPU's vector instructions). Training SAC stays
available (``DatasetBudget.shipped_policies=False``, ``tt-agents make-dataset ... --train-policy``) for other
levels, other environments and D4RL's sizes.

Each policy is a folder ``policies/ENV_ID/LEVEL`` written by
:func:`~tt_agents.data_making.sac_files.save_sac_policy` (``actor_only=True``) plus an ``about.json`` saying how
it was trained (:class:`ShippedPolicy`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .sac_files import load_sac_policy_folder

POLICIES_DIR = Path(__file__).parent / "policies"
"""Where the shipped policy folders live (``ENV_ID/LEVEL``)."""


@dataclass(frozen=True)
class ShippedPolicy:
    """One shipped data policy and how it was trained (its folder's ``about.json``)."""

    env_id: str
    level: str
    sac_seed: int
    """Seed of the SAC run that trained it."""
    sac_steps: int
    """Environment steps the SAC run had taken at this snapshot."""
    evaluation_return: float
    """Its mean return with deterministic actions in the SAC run's evaluation."""
    sac_kwargs: dict[str, Any]
    """The ``stable_baselines3.SAC`` arguments of that run beyond SB3's defaults (``{}``: none)."""
    note: str
    """How it was chosen and how it compares with D4RL's level."""
    path: Path
    """Its folder."""

    def load(self) -> Any:
        """The SB3 ``SACPolicy`` (on the CPU, eval mode; only the actor is stored, the critics are untrained)."""
        return load_sac_policy_folder(self.path)

    def describe(self) -> str:
        """A phrase for a dataset's description."""
        return (
            f"the SB3 SAC policy shipped with tt_agents for this level (SAC seed {self.sac_seed}, "
            f"{self.sac_steps} environment steps, deterministic evaluation return {self.evaluation_return:.1f}: "
            f"{self.note})"
        )


def shipped_policies() -> list[ShippedPolicy]:
    """Every shipped data policy, sorted by environment and level."""
    found = []
    for about in sorted(POLICIES_DIR.glob("*/*/about.json")):
        info = json.loads(about.read_text())
        found.append(
            ShippedPolicy(
                env_id=str(info["env_id"]),
                level=str(info["level"]),
                sac_seed=int(info["sac_seed"]),
                sac_steps=int(info["sac_steps"]),
                evaluation_return=float(info["evaluation_return"]),
                sac_kwargs=dict(info.get("sac_kwargs", {})),
                note=str(info["note"]),
                path=about.parent,
            )
        )
    return found


def shipped_policy(env_id: str, level: str) -> ShippedPolicy | None:
    """The shipped data policy of ``level`` in ``env_id`` (a full Gymnasium id, e.g. ``"Hopper-v5"``), or None."""
    return next((p for p in shipped_policies() if p.env_id == env_id and p.level == level), None)


def shipped_sac_kwargs(env_id: str) -> dict[str, Any]:
    """The SAC recipe (``stable_baselines3.SAC`` arguments beyond SB3's defaults) of the policies shipped for
    ``env_id``, ``{}`` where none ships; a ValueError if its policies were trained with different ones."""
    recipes = [p.sac_kwargs for p in shipped_policies() if p.env_id == env_id]
    if any(recipe != recipes[0] for recipe in recipes):
        raise ValueError(f"the policies shipped for {env_id} were trained with different SAC arguments: {recipes}")
    return dict(recipes[0]) if recipes else {}
