"""Reading datasets: episodes → per-step arrays → fixed-length training windows.

Three stages, each a plain object:

1. :func:`load_episodes` reads a Minari dataset (by id or as a ``minari.MinariDataset``) or in-memory
   episodes into a list of validated :class:`Episode` objects (float32 arrays, no NaN/inf).
2. :meth:`TrajectoryData.from_episodes` joins each episode into rows ``[observation, action, reward,
   reward-to-go]`` (the :class:`~tt_agents.layout.TransitionLayout` column order), with the termination
   penalty and the reward-to-go target.
3. :class:`WindowDataset` tokenizes everything once and serves windows of ``sequence_length`` transitions
   (plus a goal prefix for goal-conditioned data), padded past an episode's end with the stop token.

Goal-conditioned data uses hindsight relabelling (paper Sec. 3.2): an episode's goal is the goal-space
position it finally reached (``load_episodes(..., goal_key="achieved_goal")`` reads it from the final
observation), and :func:`relabelled_prefixes` adds prefixes of the episodes, each relabelled with the position
it reached.
"""

from .episodes import Episode, ObservationKey
from .loading import load_episodes
from .minari_reading import DatasetNotAvailableError, load_minari_dataset, reference_scores_of
from .relabelling import relabelled_prefixes
from .trajectories import TrajectoryData, reward_to_go
from .windows import TokenizerLike, WindowDataset

__all__ = [
    "DatasetNotAvailableError",
    "Episode",
    "ObservationKey",
    "TokenizerLike",
    "TrajectoryData",
    "WindowDataset",
    "load_episodes",
    "load_minari_dataset",
    "reference_scores_of",
    "relabelled_prefixes",
    "reward_to_go",
]
