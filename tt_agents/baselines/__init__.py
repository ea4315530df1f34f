"""Offline-RL baselines on the same episodes as the Trajectory Transformer: behaviour cloning and IQL.

Every agent reads its data with :func:`tt_agents.data_loading.load_episodes` (a Minari id, a
``minari.MinariDataset`` or in-memory episodes), acts through the Stable-Baselines3 ``predict`` contract (so
``evaluate_policy`` and :func:`tt_agents.evaluate` work on it), is reproducible on CPU for a seed, and saves with
``save_pretrained(folder)`` / ``from_pretrained(folder)`` as :class:`tt_agents.TrajectoryTransformerAgent` does
(``config.json`` + ``model.safetensors``; ``save``/``load`` are aliases, and ``load`` still reads the legacy
single-file checkpoints).

- :class:`BCAgent`: an MLP policy (2x256 ReLU) whose output is tanh-squashed to the action bounds, trained
  with Adam on the mean squared error to the dataset's actions (in the environment's units).
- :class:`GoalBCAgent`: :class:`BCAgent` on ``concat(observation, goal)`` for goal envs (Dict observations),
  trained with hindsight goals (each episode's final ``achieved_goal``), acting on ``desired_goal``.
- :class:`IQLAgent`: Implicit Q-Learning (Kostrikov, Nair & Levine, 2021) with the paper's locomotion
  hyperparameters (:class:`IQLConfig`). :meth:`IQLAgent.q_function` gives the planner's ``q`` scorer a
  :class:`tt_agents.qfunctions.IQLQFunction` in the original reward scale.
- :class:`GaussianEnsemble`: a PETS-style probabilistic ensemble of single-step dynamics models, the baseline
  of the long-horizon prediction experiment (:mod:`tt_agents.analysis`).
"""

from ..qfunctions import IQLQFunction
from .base import BaselineAgent
from .bc import BCAgent, GoalBCAgent
from .ensemble import GaussianEnsemble
from .iql import IQLAgent, expectile_loss
from .iql_config import IQLConfig
from .networks import (
    ActionScaler,
    CategoricalActor,
    GaussianActor,
    Normalizer,
    SquashedPolicy,
    TwinQ,
    ValueNetwork,
    mlp,
)
from .transitions import Transitions, transitions_from_episodes

__all__ = [
    "ActionScaler",
    "BCAgent",
    "BaselineAgent",
    "CategoricalActor",
    "GaussianActor",
    "GaussianEnsemble",
    "GoalBCAgent",
    "IQLAgent",
    "IQLConfig",
    "IQLQFunction",
    "Normalizer",
    "SquashedPolicy",
    "Transitions",
    "TwinQ",
    "ValueNetwork",
    "expectile_loss",
    "mlp",
    "transitions_from_episodes",
]
