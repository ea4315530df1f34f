"""The published numbers the benchmarks are compared with, and the authors' training budgets behind them.

Janner, Li & Levine (2021), *Offline Reinforcement Learning as One Big Sequence Modeling Problem*: Table 1 (D4RL
locomotion) and Table 2 (AntMaze); IQL on locomotion from Kostrikov, Nair & Levine (2021), Table 1; the training
budgets from the authors' released code (jannerm/trajectory-transformer, ``config/offline.py``).
"""

from __future__ import annotations

import math

Number = tuple[float, float | None]
"""A published score and its standard error (None where the paper gives none)."""

PAPER_TABLE1: dict[str, dict[str, Number]] = {
    # Janner, Li & Levine (2021), Table 1 (D4RL v2): TT is mean ± s.e. over 15 runs (5 models x 3 trajectories);
    # BC is taken there from Kumar et al. (2020a), CQL from Kostrikov et al. (2021).
    "halfcheetah-medium-expert": {
        "bc": (59.9, None),
        "mbop": (105.9, None),
        "brac": (41.9, None),
        "cql": (91.6, None),
        "dt": (86.8, None),
        "tt-uniform": (40.8, 2.3),
        "tt-quantile": (95.0, 0.2),
    },
    "hopper-medium-expert": {
        "bc": (79.6, None),
        "mbop": (55.1, None),
        "brac": (0.9, None),
        "cql": (105.4, None),
        "dt": (107.6, None),
        "tt-uniform": (106.0, 0.28),
        "tt-quantile": (110.0, 2.7),
    },
    "walker2d-medium-expert": {
        "bc": (36.6, None),
        "mbop": (70.2, None),
        "brac": (81.6, None),
        "cql": (108.8, None),
        "dt": (108.1, None),
        "tt-uniform": (91.0, 2.8),
        "tt-quantile": (101.9, 6.8),
    },
    "halfcheetah-medium": {
        "bc": (43.1, None),
        "mbop": (44.6, None),
        "brac": (46.3, None),
        "cql": (44.0, None),
        "dt": (42.6, None),
        "tt-uniform": (44.0, 0.31),
        "tt-quantile": (46.9, 0.4),
    },
    "hopper-medium": {
        "bc": (63.9, None),
        "mbop": (48.8, None),
        "brac": (31.3, None),
        "cql": (58.5, None),
        "dt": (67.6, None),
        "tt-uniform": (67.4, 2.9),
        "tt-quantile": (61.1, 3.6),
    },
    "walker2d-medium": {
        "bc": (77.3, None),
        "mbop": (41.0, None),
        "brac": (81.1, None),
        "cql": (72.5, None),
        "dt": (74.0, None),
        "tt-uniform": (81.3, 2.1),
        "tt-quantile": (79.0, 2.8),
    },
    "halfcheetah-medium-replay": {
        "bc": (4.3, None),
        "mbop": (42.3, None),
        "brac": (47.7, None),
        "cql": (45.5, None),
        "dt": (36.6, None),
        "tt-uniform": (44.1, 0.9),
        "tt-quantile": (41.9, 2.5),
    },
    "hopper-medium-replay": {
        "bc": (27.6, None),
        "mbop": (12.4, None),
        "brac": (0.6, None),
        "cql": (95.0, None),
        "dt": (82.7, None),
        "tt-uniform": (99.4, 3.2),
        "tt-quantile": (91.5, 3.6),
    },
    "walker2d-medium-replay": {
        "bc": (36.9, None),
        "mbop": (9.7, None),
        "brac": (0.9, None),
        "cql": (77.2, None),
        "dt": (66.6, None),
        "tt-uniform": (79.4, 3.3),
        "tt-quantile": (82.6, 6.9),
    },
}
"""The paper's Table 1 (normalized scores), keyed ``env-level``."""

IQL_KOSTRIKOV: dict[str, float] = {
    "halfcheetah-medium": 47.4,
    "hopper-medium": 66.3,
    "walker2d-medium": 78.3,
    "halfcheetah-medium-replay": 44.2,
    "hopper-medium-replay": 94.7,
    "walker2d-medium-replay": 73.9,
    "halfcheetah-medium-expert": 86.7,
    "hopper-medium-expert": 91.5,
    "walker2d-medium-expert": 109.6,
}
"""IQL on D4RL v2 locomotion from Kostrikov, Nair & Levine (2021), Table 1: the TT paper reports IQL only on
AntMaze (its Table 2), so these come from the IQL paper itself."""


def locomotion_paper_scores(key: str) -> dict[str, Number]:
    """The published numbers for the locomotion methods (TT quantile and uniform, BC, IQL) on ``key``
    (``env-level``); empty where none exist."""
    row = {m: PAPER_TABLE1[key][m] for m in ("tt-quantile", "tt-uniform", "bc")} if key in PAPER_TABLE1 else {}
    if key in IQL_KOSTRIKOV:
        row["iql"] = (IQL_KOSTRIKOV[key], None)
    return row


PAPER_TABLE2: dict[str, dict[str, Number]] = {
    # Janner, Li & Levine (2021), Table 2 (AntMaze v0, normalized score = success rate x 100); baselines quoted
    # there from Kostrikov et al. (2021); TT (+Q) is mean ± s.e. over 15 runs.
    "antmaze-umaze": {"bc": (54.6, None), "iql": (87.5, None), "tt-q": (100.0, 0.0)},
    "antmaze-medium-play": {"bc": (0.0, None), "iql": (71.2, None), "tt-q": (93.3, 6.4)},
    "antmaze-medium-diverse": {"bc": (0.0, None), "iql": (70.0, None), "tt-q": (100.0, 0.0)},
    "antmaze-large-play": {"bc": (0.0, None), "iql": (39.6, None), "tt-q": (66.7, 12.2)},
    "antmaze-large-diverse": {"bc": (0.0, None), "iql": (47.5, None), "tt-q": (60.0, 12.7)},
}
"""The paper's Table 2 for TT+Q, IQL and BC (it also lists CQL and DT), keyed ``antmaze-LEVEL``."""

PAPER_SEEDS, PAPER_EPISODES = 5, 3
"""The paper's evaluation: 5 trained Transformers x 3 trajectories each."""
PAPER_BASELINE_STEPS = 1_000_000
"""Gradient steps of BC and IQL in the papers quoted."""
AUTHORS_EPOCH_TRANSITIONS = 1_000_000
"""The authors train ``n_epochs_ref * 1M / len(dataset)`` epochs, i.e. a fixed number of window samples."""
AUTHORS_EPOCHS = {"hopper-medium-replay": 80, "walker2d-medium-replay": 80}
"""The authors' ``n_epochs_ref`` where it is not 50."""


def authors_epochs(key: str) -> int:
    """The authors' ``n_epochs_ref`` for the locomotion dataset ``key`` (``env-level``)."""
    return AUTHORS_EPOCHS.get(key, 50)


def authors_tt_steps(key: str, batch_size: int) -> int:
    """TT gradient steps at ``batch_size`` equal to the authors' budget for ``key``: ``n_epochs_ref`` epochs of a
    1M-transition dataset."""
    return math.ceil(AUTHORS_EPOCH_TRANSITIONS * authors_epochs(key) / batch_size)
