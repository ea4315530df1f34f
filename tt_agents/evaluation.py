"""Evaluate an agent on an environment: returns, normalized score, and planning time per action.

Built on Stable-Baselines3's ``evaluate_policy`` (with ``Monitor``-wrapped environments), so the numbers
mean what they mean for any SB3 policy.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from .agent import AgentState, TrajectoryTransformerAgent


@dataclass
class EvaluationResult:
    """Per-episode returns and lengths, their summary, and timing."""

    returns: list[float]
    lengths: list[int]
    ms_per_call: float
    """Mean wall time of one ``predict`` call (one planner call for all environments)."""
    ms_per_action: float
    """``ms_per_call`` divided by the number of environments planned per call."""
    normalized_returns: list[float] | None = None
    """``100 * (return - ref_min) / (ref_max - ref_min)`` when the training data had reference scores."""
    successes: list[bool] | None = None
    """Per episode, whether the environment reported success (``info["success"]`` or ``info["is_success"]``)
    at any step; None when it never reports either (goal environments such as the mazes report it)."""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std_return(self) -> float:
        return float(np.std(self.returns))

    @property
    def success_rate(self) -> float | None:
        return float(np.mean(self.successes)) if self.successes is not None else None

    @property
    def normalized_score(self) -> float | None:
        return float(np.mean(self.normalized_returns)) if self.normalized_returns is not None else None

    @property
    def normalized_stderr(self) -> float | None:
        if self.normalized_returns is None:
            return None
        return float(np.std(self.normalized_returns) / np.sqrt(len(self.normalized_returns)))

    def summary(self) -> str:
        text = f"return {self.mean_return:.1f} ± {self.std_return:.1f} over {len(self.returns)} episodes"
        if self.normalized_score is not None:
            text += f", normalized score {self.normalized_score:.1f} ± {self.normalized_stderr:.1f} (s.e.)"
        if self.success_rate is not None:
            text += f", success {100 * self.success_rate:.0f}%"
        return text + f", {self.ms_per_action:.1f} ms/action"

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "mean_return": self.mean_return,
            "normalized_score": self.normalized_score,
            "success_rate": self.success_rate,
        }


def make_vec_env(env: str | EnvSpec | gym.Env | VecEnv, n_envs: int = 1, seed: int = 0, **make_kwargs: Any) -> VecEnv:
    """A ``DummyVecEnv`` of ``n_envs`` Monitor-wrapped copies of ``env`` (an id or ``EnvSpec``, e.g. a Minari
    dataset's ``spec.env_spec``; or a single env if n_envs=1)."""
    if isinstance(env, VecEnv | gym.Env) and make_kwargs:
        raise ValueError(f"{sorted(make_kwargs)} apply to an environment id or EnvSpec, not to an environment instance")
    if isinstance(env, VecEnv):
        return env
    if isinstance(env, gym.Env):
        if n_envs != 1:
            raise ValueError("pass an environment id (not an instance) to evaluate with several environments")
        venv = DummyVecEnv([lambda: Monitor(env)])
    else:
        venv = DummyVecEnv([lambda: Monitor(gym.make(env, **make_kwargs)) for _ in range(n_envs)])
    venv.seed(seed)
    return venv


def _cut_short(env: Any, make_kwargs: dict[str, Any]) -> bool:
    """Whether ``max_episode_steps`` in ``make_kwargs`` shortens the episodes of ``env`` (an id or EnvSpec):
    reference scores are for full episodes."""
    limit = make_kwargs.get("max_episode_steps")
    if limit is None:
        return False
    spec = env if isinstance(env, EnvSpec) else gym.spec(env)
    return spec.max_episode_steps is None or limit < spec.max_episode_steps


def evaluate(
    agent: TrajectoryTransformerAgent | Any,
    env: str | EnvSpec | gym.Env | VecEnv,
    n_episodes: int = 10,
    n_envs: int = 1,
    *,
    seed: int = 0,
    use_rewards: bool = False,
    show_progress: bool = True,
    **make_kwargs: Any,
) -> EvaluationResult:
    """Run ``n_episodes`` episodes with SB3's ``evaluate_policy``; ``n_envs`` environments plan together.

    ``agent``: a :class:`TrajectoryTransformerAgent`, or any policy with SB3's ``predict`` (the baselines,
    SB3 models). ``use_rewards``: give a TT agent the real rewards for its context (``evaluate_policy`` alone
    gives none, and the model's own reward predictions fill in). ``make_kwargs`` go to ``gym.make`` (e.g.
    ``max_episode_steps``; episodes cut that way get no normalized score, since the reference scores are for
    full episodes). A TT agent's planner is re-seeded with ``seed`` so runs are repeatable.
    """
    venv = make_vec_env(env, n_envs, seed, **make_kwargs)
    if isinstance(agent, TrajectoryTransformerAgent):
        agent.seed(seed)
    timings: list[float] = []
    predict = agent.predict

    def timed_predict(*args: Any, **kwargs: Any) -> tuple[np.ndarray, AgentState]:
        start = time.perf_counter()
        out = predict(*args, **kwargs)
        timings.append(time.perf_counter() - start)
        return out

    progress = Progress(
        TextColumn("[bold]evaluating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("episodes  {task.fields[last]}"),
        TimeElapsedColumn(),
        disable=not show_progress,
    )
    with progress:
        task = progress.add_task("eval", total=n_episodes, last="")
        callback = _EpisodeTracker(progress, task, use_rewards, venv.num_envs)
        agent.predict = timed_predict  # type: ignore[method-assign]
        try:
            returns, lengths = evaluate_policy(
                agent, venv, n_eval_episodes=n_episodes, return_episode_rewards=True, callback=callback, warn=False
            )
        finally:
            del agent.predict
    ms_per_call = 1000.0 * float(np.mean(timings))
    info = getattr(agent, "dataset_info", {})
    normalized = None
    if not _cut_short(env, make_kwargs) and "ref_min_score" in info and "ref_max_score" in info:
        low, high = info["ref_min_score"], info["ref_max_score"]
        normalized = [100.0 * (r - low) / (high - low) for r in returns]
    return EvaluationResult(
        returns=[float(r) for r in returns],
        lengths=[int(n) for n in lengths],
        ms_per_call=ms_per_call,
        ms_per_action=ms_per_call / venv.num_envs,
        normalized_returns=normalized,
        successes=callback.successes,
        info={
            "n_envs": venv.num_envs,
            "seed": seed,
            "use_rewards": use_rewards,
            "policy": type(agent).__name__,
            "mode": agent.config.planner.mode if isinstance(agent, TrajectoryTransformerAgent) else None,
        },
    )


class _EpisodeTracker:
    """``evaluate_policy``'s callback: feeds real rewards to a TT agent's context, records per episode whether
    the environment reported success at any step, and advances the progress bar.

    An episode is recorded exactly when ``evaluate_policy`` records its return (a ``done`` that carries
    Monitor's ``episode`` info when the env is Monitor-wrapped, any ``done`` otherwise), so
    :attr:`successes` lines up with the returns."""

    def __init__(self, progress: Progress, task: Any, use_rewards: bool, n_envs: int) -> None:
        self.progress, self.task, self.use_rewards = progress, task, use_rewards
        self.reached = [False] * n_envs
        self.outcomes: list[bool] = []
        self.reports = False

    @property
    def successes(self) -> list[bool] | None:
        """Per recorded episode, whether it reached success; None if the environments never report it."""
        return self.outcomes if self.reports else None

    def __call__(self, local: dict[str, Any], _: dict[str, Any]) -> None:
        i, info = local["i"], local["info"]
        if self.use_rewards and isinstance(local["states"], AgentState):
            local["states"].rewards[i] = float(local["reward"])
        flag = info.get("success", info.get("is_success"))
        if flag is not None:
            self.reports = True
            self.reached[i] = self.reached[i] or bool(flag)
        if not local["done"]:
            return
        episode = info.get("episode")
        if episode is not None or not local.get("is_monitor_wrapped", True):
            self.outcomes.append(self.reached[i])
            last = f"last return {episode['r']:.1f}" if episode else ""
            if self.reports:
                last += f", {'reached' if self.reached[i] else 'missed'} the goal"
            self.progress.update(self.task, advance=1, last=last)
        self.reached[i] = False
