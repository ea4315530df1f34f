"""tt_agents: the Trajectory Transformer (Janner, Li & Levine, 2021) as an offline RL agent.

A GPT over per-dimension discretized (state, action, reward, reward-to-go) tokens, with beam search as the
planner, behind a Stable-Baselines3-style policy object.
"""

__version__ = "0.1.0"

from .agent import CheckpointError, TrajectoryTransformerAgent, TTAgent  # noqa: E402
from .config import (  # noqa: E402
    AgentConfig,
    DataConfig,
    ModelConfig,
    PlannerConfig,
    TokenizerConfig,
    TrainConfig,
    cpu_preset,
    paper_preset,
)
from .data import DatasetNotAvailableError  # noqa: E402
from .datasets import make_locomotion_dataset as make_dataset  # noqa: E402
from .evaluation import EvaluationResult, evaluate  # noqa: E402
from .layout import TransitionLayout  # noqa: E402

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
