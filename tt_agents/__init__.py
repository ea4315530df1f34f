"""tt_agents: the Trajectory Transformer (Janner, Li & Levine, 2021) as an offline RL agent.

A GPT over per-dimension discretized (state, action, reward, reward-to-go) tokens, with beam search as the
planner, behind a Stable-Baselines3-style policy object.
"""

from ._io import CheckpointError
from ._version import __version__
from .agent import TrajectoryTransformerAgent, TTAgent
from .config import (
    AgentConfig,
    DataConfig,
    ModelConfig,
    PlannerConfig,
    TokenizerConfig,
    TrainConfig,
    cpu_preset,
    paper_preset,
)
from .data_loading import DatasetNotAvailableError
from .data_making import make_locomotion_dataset as make_dataset
from .evaluation import EvaluationResult, evaluate
from .layout import TransitionLayout

__all__ = [
    "AgentConfig",
    "CheckpointError",
    "DataConfig",
    "DatasetNotAvailableError",
    "EvaluationResult",
    "ModelConfig",
    "PlannerConfig",
    "TTAgent",
    "TokenizerConfig",
    "TrainConfig",
    "TrajectoryTransformerAgent",
    "TransitionLayout",
    "__version__",
    "cpu_preset",
    "evaluate",
    "make_dataset",
    "paper_preset",
]
