"""Four-rooms goal reaching (paper Section 4, Figure 6): the expert dataset, the agent recipe, the evaluation.

* :func:`make_four_rooms_dataset` records :class:`~tt_agents.envs.four_rooms_expert.FourRoomsExpert` in
  ``tt_agents/FourRooms-v0`` with :func:`tt_agents.data_making.record_dataset`: every episode starts and ends at
  points sampled uniformly over the free space (the environment's own ``reset``) and ends when the expert
  reaches its goal (or at the 100-step time limit); the expert's action noise is drawn per episode from a few
  levels. Observations are the environment's Dict (``observation``, ``achieved_goal``, ``desired_goal``), so
  the Trajectory Transformer's hindsight relabelling (goal = the episode's final ``achieved_goal``) and the
  goal-conditioned BC baseline both read it.
* :func:`relabelled_prefixes` / :func:`training_episodes`: hindsight relabelling applied to prefixes too
  (each prefix is a trajectory to its own final state), multiplying the distinct goals seen in training.
* :func:`four_rooms_goal_config` and :func:`train_four_rooms_agent`: the CPU-sized goal-mode agent of
  ``examples/four_rooms_goal.py`` (also what :func:`tt_agents.pretrained.four_rooms_agent` ships).
* :func:`held_out_pairs` and :func:`rollout_goal_reaching`: success rate of any SB3-style policy on fixed
  start/goal pairs, all environments stepped as one batch (one planner call per step for the agent).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from tt_agents.config import AgentConfig, DataConfig, ModelConfig, PlannerConfig, TokenizerConfig, TrainConfig
from tt_agents.data_loading import Episode, load_episodes
from tt_agents.envs import FOUR_ROOMS_ID
from tt_agents.envs.four_rooms import MAX_EPISODE_STEPS, FourRoomsEnv
from tt_agents.envs.four_rooms_expert import FourRoomsExpert

if TYPE_CHECKING:
    import minari

    from tt_agents.agent import TrajectoryTransformerAgent

FOUR_ROOMS_DATASET_ID = "tt-agents/fourrooms/expert-v0"
"""Default Minari id of :func:`make_four_rooms_dataset`."""
DEFAULT_EPISODES = 1000
"""Default number of episodes (about 29k transitions with the default noise; recorded in about 15 s on a CPU)."""
DEFAULT_NOISE: tuple[float, ...] = (0.1, 0.3, 0.5)
"""Default noise levels of the expert (standard deviation of its Gaussian action noise), one drawn per
episode: the noisier episodes bump into walls and recover, which a learned policy needs after a mistake."""
DEFAULT_PREFIXES = 8
"""Relabelled prefixes per recorded episode in :func:`training_episodes`."""
DEFAULT_TRAIN_STEPS = 8000
"""Gradient steps of :func:`train_four_rooms_agent`."""
EVAL_SEED = 1_000_000
"""Base reset seed of the held-out evaluation pairs (far from the recording's seeds)."""

_KEYS = ("observation", "achieved_goal", "desired_goal")


# ---------------------------------------------------------------------------------------------- data


class MixedNoiseExpert:
    """:class:`FourRoomsExpert` whose noise level is drawn anew for every episode from ``noise_levels``.

    Noisier episodes bump into walls and recover, so the data also covers states off the expert's usual
    routes (what a learned policy visits after a small mistake). ``reset()`` is called by
    :func:`tt_agents.data_making.record_dataset` at the start of every episode.
    """

    def __init__(self, env: gym.Env, noise_levels: Sequence[float], seed: int = 0) -> None:
        self.noise_levels = tuple(float(n) for n in noise_levels)
        if not self.noise_levels:
            raise ValueError("noise_levels must not be empty")
        self.expert = FourRoomsExpert(env, noise=self.noise_levels[0], seed=seed)
        self._rng = np.random.default_rng(seed + 1)

    def reset(self) -> None:
        self.expert.noise = float(self._rng.choice(self.noise_levels))

    def __call__(self, observation: dict[str, Any]) -> np.ndarray:
        return self.expert(observation)


def make_four_rooms_dataset(
    n_episodes: int = DEFAULT_EPISODES,
    noise: float | Sequence[float] = DEFAULT_NOISE,
    seed: int = 0,
    dataset_id: str = FOUR_ROOMS_DATASET_ID,
    overwrite: bool = False,
    show_progress: bool = True,
) -> minari.MinariDataset:
    """Record the noisy scripted expert in ``tt_agents/FourRooms-v0`` as a local Minari dataset.

    Args:
        n_episodes: episodes to record; each has its start and goal sampled uniformly over the free space.
        noise: standard deviation of the Gaussian noise on each action component (``0`` is noise-free), or
            several levels: each episode then draws one uniformly (:class:`MixedNoiseExpert`).
        seed: seed of the environment resets (the first episode is reset with ``seed``, the others with seeds
            drawn from it) and of the expert's noise.
        dataset_id: Minari id ``namespace/name-vN``.
        overwrite: replace an existing dataset with the same id (otherwise that is a ``FileExistsError``).
        show_progress: show a progress bar.

    Returns:
        The written dataset (Dict observations; sparse reward ``-1`` per step, ``0`` on reaching the goal,
        which terminates the episode).
    """
    from tt_agents.data_making import record_dataset

    env = gym.make(FOUR_ROOMS_ID)
    levels = (float(noise),) if np.isscalar(noise) else tuple(float(n) for n in noise)
    expert = MixedNoiseExpert(env, levels, seed=seed)
    try:
        return record_dataset(
            env,
            expert,
            dataset_id,
            n_episodes=n_episodes,
            seed=seed,
            algorithm_name="FourRoomsExpert (scripted shortest route through the doorways)",
            description=(
                f"Scripted goal-reaching expert with Gaussian action noise std drawn per episode from {levels}; "
                "start and goal sampled "
                f"uniformly over the free space; {n_episodes} episodes, seed {seed}."
            ),
            overwrite=overwrite,
            show_progress=show_progress,
        )
    finally:
        env.close()


def relabelled_prefixes(
    episodes: Sequence[Episode], n_per_episode: int, min_length: int = 4, seed: int = 0
) -> list[Episode]:
    """Hindsight relabelling with more goals: each episode plus ``n_per_episode`` random prefixes of it.

    A prefix ending at step ``t`` is a trajectory whose final state is the position reached after step ``t``;
    it becomes a goal-reaching episode of its own (terminated, goal = that position, last reward 0), exactly
    as the paper relabels whole trajectories with their final state. The expert's route to a farther goal
    passes through that point on a shortest route, so the prefix is a sensible demonstration for it too.
    This multiplies the distinct goals the model sees without any new environment steps.

    Args:
        episodes: goal-conditioned episodes (``goal`` set, e.g. from :func:`tt_agents.data_loading.load_episodes`
            with ``goal_key="achieved_goal"``) whose observations are the achieved positions.
        n_per_episode: prefixes added per episode (fewer when the episode is short).
        min_length: shortest prefix, in steps.
        seed: seed of the prefix lengths.
    """
    rng = np.random.default_rng(seed)
    out: list[Episode] = []
    for episode in episodes:
        if episode.goal is None:
            raise ValueError("relabelled_prefixes needs goal-conditioned episodes (Episode.goal set)")
        out.append(episode)
        lengths = np.arange(min_length, len(episode))  # prefixes strictly shorter than the episode
        if len(lengths) == 0 or n_per_episode < 1:
            continue
        for t in rng.choice(lengths, size=min(n_per_episode, len(lengths)), replace=False):
            reached = episode.observations[t]  # the position after step t - 1: the prefix's final state
            rewards = np.full(t, -1.0, dtype=np.float32)
            rewards[-1] = 0.0
            out.append(Episode(episode.observations[:t], episode.actions[:t], rewards, True, reached, reached))
    return out


# ---------------------------------------------------------------------------------------------- agent recipe


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
        planner=PlannerConfig(mode="goal", beam_width=16, n_expand=2, horizon=4, max_context_transitions=2, seed=seed),
    )


def training_episodes(dataset: Any, n_prefixes: int = DEFAULT_PREFIXES, seed: int = 0) -> list[Episode]:
    """The episodes of ``dataset`` with their hindsight goals, plus ``n_prefixes`` relabelled prefixes each
    (:func:`relabelled_prefixes`): what :func:`train_four_rooms_agent` and the BC baseline train on."""
    episodes = load_episodes(dataset, observation_key="observation", goal_key="achieved_goal")
    return relabelled_prefixes(episodes, n_prefixes, seed=seed)


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
            :func:`training_episodes`), or a list of goal-conditioned :class:`~tt_agents.data_loading.Episode` objects
            (used as given); ``None`` records ``n_episodes`` with :func:`make_four_rooms_dataset` (defaults,
            seed ``seed``, replacing the default dataset id).
        n_episodes: episodes to record when ``dataset`` is ``None``.
        n_steps: gradient steps.
        n_prefixes: relabelled prefixes per recorded episode (0: the whole episodes only).
        seed: seeds the data recording, the relabelling, the training and the planner.
        config: overrides :func:`four_rooms_goal_config`.
        device: torch device (``"cpu"`` by default: the model is small).
        show_progress: progress bars.
    """
    from tt_agents.agent import TrajectoryTransformerAgent

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


class ScriptedExpertPolicy:
    """:class:`FourRoomsExpert` behind the SB3 ``predict`` contract (single or batched Dict observations)."""

    def __init__(self, noise: float = 0.1, seed: int = 0) -> None:
        self.expert = FourRoomsExpert(FourRoomsEnv(), noise=noise, seed=seed)

    def predict(
        self,
        observation: dict[str, np.ndarray],
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """Actions (2,) or (n_envs, 2) for the observation(s)."""
        obs = np.asarray(observation["observation"])
        if obs.ndim == 1:
            return self.expert(observation), None
        rows = [{k: np.asarray(observation[k])[i] for k in ("observation", "desired_goal")} for i in range(len(obs))]
        return np.stack([self.expert(row) for row in rows]), None


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
    :class:`ScriptedExpertPolicy`. An episode ends on success (``info["is_success"]``) or after
    ``max_steps`` steps (at most the environment's 100-step limit).
    """
    from tt_agents.agent import AgentState

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
