"""The recipe of the shipped four-rooms agent and its goal-reaching evaluation (paper Section 4, Figure 6).

* :func:`four_rooms_goal_config` and :func:`train_four_rooms_agent`: the CPU-sized goal-mode agent of
  ``examples/four_rooms_goal.py`` (also what :func:`tt_agents.pretrained.four_rooms_agent` ships), trained on
  :func:`tt_agents.data_making.four_rooms.training_episodes`.
* :func:`held_out_pairs` and :func:`rollout_goal_reaching`: success rate of any SB3-style policy on fixed
  start/goal pairs, all environments stepped as one batch (one planner call per step for the agent).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from ..agent import TrajectoryTransformerAgent
from ..agent_state import AgentState
from ..config import AgentConfig, DataConfig, ModelConfig, PlannerConfig, TokenizerConfig, TrainConfig
from ..data_making.four_rooms import DEFAULT_EPISODES, DEFAULT_PREFIXES, make_four_rooms_dataset, training_episodes
from ..envs import FOUR_ROOMS_ID
from ..envs.four_rooms import MAX_EPISODE_STEPS, FourRoomsEnv

DEFAULT_TRAIN_STEPS = 8000
"""Gradient steps of :func:`train_four_rooms_agent`."""
EVAL_SEED = 1_000_000
"""Base reset seed of the held-out evaluation pairs (far from the recording's seeds)."""

_KEYS = ("observation", "achieved_goal", "desired_goal")


def four_rooms_goal_config(n_steps: int = DEFAULT_TRAIN_STEPS, seed: int = 0) -> AgentConfig:
    """The CPU-sized goal-conditioned configuration of ``examples/four_rooms_goal.py``.

    Reduced from the paper (and named as such): 50 uniform bins per dimension (positions, goals and actions
    live in bounded boxes; 0.02 wide for positions), 2 layers of 64-dim embeddings without dropout,
    6-transition windows, batch 128, 8000 steps. Planning is the paper's likelihood beam search in ``goal``
    mode: beam 16, 2 expansions, horizon 4, 2 context transitions, replanning every step. Rewards are the
    environment's sparse ``-1``/``0`` with no termination penalty; the planner never scores them, it keeps the
    most likely plan given the goal tokens.
    """
    return AgentConfig(
        tokenizer=TokenizerConfig(n_bins=50, strategy="uniform"),
        data=DataConfig(termination_penalty=None, validation_fraction=0.02),
        model=ModelConfig(n_layer=2, n_head=4, n_embd=64, dropout=0.0, sequence_length=6),
        train=TrainConfig(
            n_steps=n_steps,
            batch_size=128,
            learning_rate=1e-3,
            warmup_steps=200,
            eval_every=1000,
            checkpoint_every=0,
            seed=seed,
        ),
        planner=PlannerConfig(  # cdf_act 0.6: the setting the shipped agent was measured with
            mode="goal", beam_width=16, n_expand=2, horizon=4, max_context_transitions=2, cdf_act=0.6, seed=seed
        ),
    )


def train_four_rooms_agent(
    dataset: Any = None,
    *,
    n_episodes: int = DEFAULT_EPISODES,
    n_steps: int = DEFAULT_TRAIN_STEPS,
    n_prefixes: int = DEFAULT_PREFIXES,
    seed: int = 0,
    config: AgentConfig | None = None,
    device: str = "cpu",
    show_progress: bool = True,
) -> TrajectoryTransformerAgent:
    """Train the goal-conditioned Trajectory Transformer on four-rooms expert data.

    Args:
        dataset: a Minari id or ``MinariDataset`` of Dict-observation episodes (relabelled here with
            :func:`~tt_agents.data_making.four_rooms.training_episodes`), or a list of goal-conditioned
            :class:`~tt_agents.data_loading.Episode` objects (used as given); ``None`` records ``n_episodes`` with
            :func:`~tt_agents.data_making.four_rooms.make_four_rooms_dataset` (defaults, seed ``seed``, replacing
            the default dataset id).
        n_episodes: episodes to record when ``dataset`` is ``None``.
        n_steps: gradient steps.
        n_prefixes: relabelled prefixes per recorded episode (0: the whole episodes only).
        seed: seeds the data recording, the relabelling, the training and the planner.
        config: overrides :func:`four_rooms_goal_config`.
        device: torch device (``"cpu"`` by default: the model is small).
        show_progress: progress bars.
    """
    if dataset is None:
        dataset = make_four_rooms_dataset(n_episodes, seed=seed, overwrite=True, show_progress=show_progress)
    spec = getattr(dataset, "spec", None)
    episodes = dataset if isinstance(dataset, list) else training_episodes(dataset, n_prefixes, seed)
    config = config or four_rooms_goal_config(n_steps, seed)
    env = gym.make(FOUR_ROOMS_ID)
    agent = TrajectoryTransformerAgent(env.observation_space, env.action_space, config, device=device)
    env.close()
    agent.fit(episodes, n_steps=n_steps, seed=seed, show_progress=show_progress)
    if spec is not None:
        agent.dataset_info["dataset_id"] = spec.dataset_id
    agent.dataset_info["relabelled_prefixes_per_episode"] = n_prefixes
    return agent


# ---------------------------------------------------------------------------------------------- evaluation


def held_out_pairs(n_pairs: int = 100, seed: int = EVAL_SEED) -> np.ndarray:
    """(n_pairs, 2, 2) float64 ``[start, goal]`` pairs, drawn as the environment's ``reset(seed=seed + i)`` does
    (uniform over the free space, at least ``min_goal_distance`` apart)."""
    env = FourRoomsEnv()
    pairs = np.zeros((n_pairs, 2, 2))
    for i in range(n_pairs):
        env.reset(seed=seed + i)
        pairs[i] = env.position, env.goal
    return pairs


@dataclass
class GoalReachingResult:
    """Outcome of :func:`rollout_goal_reaching` on a set of start/goal pairs."""

    success: np.ndarray
    """(n_pairs,) bool: ``info["is_success"]`` was reached within the step budget."""
    steps: np.ndarray
    """(n_pairs,) int: steps taken (to success, or the budget)."""
    paths: list[np.ndarray] = field(default_factory=list)
    """Per pair, the (steps + 1, 2) positions visited, the start included."""
    seconds: float = 0.0
    """Wall time of the whole rollout."""
    ms_per_call: float = 0.0
    """Mean wall time of one batched ``predict`` call."""

    @property
    def success_rate(self) -> float:
        return float(np.mean(self.success))

    @property
    def mean_steps_to_success(self) -> float:
        return float(np.mean(self.steps[self.success])) if self.success.any() else float("nan")


def rollout_goal_reaching(
    policy: Any,
    pairs: np.ndarray | Sequence[tuple[Any, Any]],
    max_steps: int = MAX_EPISODE_STEPS,
) -> GoalReachingResult:
    """Run ``policy`` from every ``(start, goal)`` pair in its own ``tt_agents/FourRooms-v0``, all as one batch.

    ``policy`` is anything with SB3's ``predict(observation, state, episode_start, deterministic)`` taking
    batched Dict observations: a goal-mode :class:`~tt_agents.agent.TrajectoryTransformerAgent` (one
    planner call per step for all unfinished episodes), :class:`~tt_agents.baselines.GoalBCAgent` or
    :class:`~tt_agents.envs.four_rooms_expert.ScriptedExpertPolicy`. An episode ends on success
    (``info["is_success"]``) or after ``max_steps`` steps (at most the environment's 100-step limit).
    """
    pairs = np.asarray(pairs, dtype=np.float64)
    n = len(pairs)
    envs = [gym.make(FOUR_ROOMS_ID) for _ in range(n)]
    observations = [env.reset(options={"start": p[0], "goal": p[1]})[0] for env, p in zip(envs, pairs, strict=True)]
    paths = [[np.asarray(p[0])] for p in pairs]
    success, steps = np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int64)
    active = list(range(n))
    state: Any = None
    episode_start = np.ones(n, dtype=bool)
    timings: list[float] = []
    start_time = time.perf_counter()
    for _ in range(max_steps):
        batch = {k: np.stack([observations[i][k] for i in active]) for k in _KEYS}
        tick = time.perf_counter()
        actions, state = policy.predict(batch, state=state, episode_start=episode_start, deterministic=True)
        timings.append(time.perf_counter() - tick)
        still = []
        for j, i in enumerate(active):
            observations[i], _, terminated, truncated, info = envs[i].step(actions[j])
            steps[i] += 1
            paths[i].append(envs[i].unwrapped.position)
            success[i] = bool(info["is_success"])
            if not (terminated or truncated):
                still.append(j)
        if isinstance(state, AgentState):  # keep the contexts of the episodes still running
            state = AgentState([state.envs[j] for j in still], [state.rewards[j] for j in still])
        active = [active[j] for j in still]
        episode_start = np.zeros(len(active), dtype=bool)
        if not active:
            break
    for env in envs:
        env.close()
    return GoalReachingResult(
        success=success,
        steps=steps,
        paths=[np.asarray(path) for path in paths],
        seconds=time.perf_counter() - start_time,
        ms_per_call=1000.0 * float(np.mean(timings)) if timings else 0.0,
    )
