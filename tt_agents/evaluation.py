"""Evaluate an agent on an environment: returns, normalized score, and planning time per action.

Built on Stable-Baselines3's ``evaluate_policy`` (with ``Monitor``-wrapped environments), so the numbers
mean what they mean for any SB3 policy.
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec
from rich.progress import Progress, TextColumn
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from ._io import make_progress
from .agent import TrajectoryTransformerAgent
from .agent_state import AgentState
from .data_loading import load_minari_dataset, reference_scores_of

if TYPE_CHECKING:
    import minari

ReferenceScores = tuple[float, float]
"""``(ref_min, ref_max)``: the returns that score 0 and 100 (D4RL's random and expert references)."""


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
    """:func:`normalized_score` of each return, when reference scores were given or the agent's training data had
    them."""
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
            "std_return": self.std_return,
            "normalized_score": self.normalized_score,
            "normalized_stderr": self.normalized_stderr,
            "success_rate": self.success_rate,
        }


def normalized_score(returns: float | Sequence[float], ref_min: float, ref_max: float) -> list[float]:
    """D4RL's normalized score of each return: ``100 * (return - ref_min) / (ref_max - ref_min)``."""
    if not (math.isfinite(ref_min) and math.isfinite(ref_max)) or ref_max == ref_min:
        raise ValueError(f"reference scores must be finite and distinct, got ref_min={ref_min}, ref_max={ref_max}")
    values = [returns] if isinstance(returns, int | float) else returns
    return [100.0 * (float(r) - ref_min) / (ref_max - ref_min) for r in values]


def reference_scores(source: ReferenceScores | str | minari.MinariDataset | Any) -> ReferenceScores | None:
    """The ``(ref_min, ref_max)`` of ``source``: a pair as it is, a Minari dataset (or its id, read from local
    storage) from its metadata, a TT agent from the dataset it was trained on; None where they are unknown."""
    if isinstance(source, tuple | list | np.ndarray):
        if len(source) != 2:
            raise ValueError(f"reference scores are a pair (ref_min, ref_max), got {source!r}")
        return float(source[0]), float(source[1])
    if isinstance(source, str):
        source = load_minari_dataset(source)
    storage = getattr(source, "storage", None)
    return reference_scores_of(storage.metadata if storage is not None else getattr(source, "dataset_info", {}))


def env_seeds(seed: int, n_envs: int) -> list[int]:
    """The reset seed of each of ``n_envs`` environments for evaluation seed ``seed``.

    Drawn from ``numpy.random.SeedSequence(seed)``, so different seeds give unrelated environment seeds (SB3's
    ``VecEnv.seed(s)`` seeds env ``i`` with ``s + i``: seed 1 would repeat four of the five starts of seed 0).
    """
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(n_envs)]


def make_vec_env(env: str | EnvSpec | gym.Env | VecEnv, n_envs: int = 1, seed: int = 0, **make_kwargs: Any) -> VecEnv:
    """A ``DummyVecEnv`` of ``n_envs`` Monitor-wrapped copies of ``env`` (an id or ``EnvSpec``, e.g. a Minari
    dataset's ``spec.env_spec``; or a single env if n_envs=1).

    Each environment is reset once here with its seed from :func:`env_seeds`; its later episodes draw their starts
    from its own seeded generator, so every episode of every seed starts from its own state. A ``VecEnv`` is
    returned as it is.
    """
    if isinstance(env, VecEnv | gym.Env) and make_kwargs:
        raise ValueError(f"{sorted(make_kwargs)} apply to an environment id or EnvSpec, not to an environment instance")
    if isinstance(env, VecEnv):
        return env
    if isinstance(env, gym.Env):
        if n_envs != 1:
            raise ValueError("pass an environment id (not an instance) to evaluate with several environments")
        envs = [Monitor(env)]
    else:
        envs = [Monitor(gym.make(env, **make_kwargs)) for _ in range(n_envs)]
    for monitored, env_seed in zip(envs, env_seeds(seed, n_envs), strict=True):
        monitored.reset(seed=env_seed)
        monitored.action_space.seed(env_seed)
    return DummyVecEnv([lambda e=e: e for e in envs])


def _cut_short(env: Any, make_kwargs: dict[str, Any]) -> bool:
    """Whether ``max_episode_steps`` in ``make_kwargs`` shortens the episodes of ``env`` (an id or EnvSpec):
    reference scores are for full episodes."""
    limit = make_kwargs.get("max_episode_steps")
    if limit is None:
        return False
    spec = env if isinstance(env, EnvSpec) else gym.spec(env)
    return spec.max_episode_steps is None or limit < spec.max_episode_steps


def _warn_without_time_limit(env: Any, make_kwargs: dict[str, Any]) -> None:
    """Warn when the environment to make (an id or EnvSpec) has no time limit and none is given: an episode of a
    policy that never reaches a terminal state (e.g. CliffWalking's) would never end."""
    if not isinstance(env, str | EnvSpec) or make_kwargs.get("max_episode_steps") is not None:
        return
    try:
        spec = env if isinstance(env, EnvSpec) else gym.spec(env)
    except gym.error.Error:
        return  # an unknown id: making the environment says so
    if spec.max_episode_steps is None:
        warnings.warn(
            f"{spec.id} has no time limit: an episode that never reaches a terminal state never ends; pass "
            "max_episode_steps=N (tt-agents evaluate --max-episode-steps N)",
            stacklevel=3,
        )


def check_spaces_match(agent: Any, venv: VecEnv) -> None:
    """A ValueError when the environment's observation or action space is not the one the agent was made for
    (agents that carry no spaces are not checked)."""
    for name in ("observation_space", "action_space"):
        expected, got = getattr(agent, name, None), getattr(venv, name)
        if expected is not None and not _same_space(expected, got):
            raise ValueError(
                f"the environment's {name.replace('_', ' ')} {got} is not the agent's {expected}: "
                "was the agent trained for this environment?"
            )


def _same_space(a: gym.Space, b: gym.Space) -> bool:
    if isinstance(a, gym.spaces.Dict) and isinstance(b, gym.spaces.Dict):
        return a.spaces.keys() == b.spaces.keys() and all(_same_space(a[k], b[k]) for k in a.spaces)
    if isinstance(a, gym.spaces.Tuple) and isinstance(b, gym.spaces.Tuple):
        return len(a.spaces) == len(b.spaces) and all(_same_space(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, gym.spaces.Discrete) and isinstance(b, gym.spaces.Discrete):
        return a.n == b.n and a.start == b.start
    if isinstance(a, gym.spaces.MultiDiscrete) and isinstance(b, gym.spaces.MultiDiscrete):
        return np.array_equal(a.nvec, b.nvec) and np.array_equal(a.start, b.start)
    return type(a) is type(b) and a.shape == b.shape


def evaluate(
    agent: TrajectoryTransformerAgent | Any,
    env: str | EnvSpec | gym.Env | VecEnv,
    n_episodes: int = 10,
    n_envs: int = 1,
    *,
    seed: int = 0,
    use_rewards: bool = False,
    reference: ReferenceScores | str | minari.MinariDataset | None = None,
    show_progress: bool = True,
    **make_kwargs: Any,
) -> EvaluationResult:
    """Run ``n_episodes`` episodes with SB3's ``evaluate_policy``; ``n_envs`` environments plan together.

    ``agent``: a :class:`TrajectoryTransformerAgent`, or any policy with SB3's ``predict`` (the baselines,
    SB3 models). ``use_rewards``: give a TT agent the real rewards for its context (``evaluate_policy`` alone
    gives none, and the model's own reward predictions fill in). ``make_kwargs`` go to ``gym.make`` (e.g.
    ``max_episode_steps``; episodes cut that way get no normalized score, since the reference scores are for
    full episodes). ``reference``: the reference scores for the normalized score, as a pair ``(ref_min, ref_max)``
    or a Minari dataset (or id) that carries them; by default a TT agent's training data's. A TT agent's planner
    is re-seeded with ``seed`` so runs are repeatable.
    """
    for name, value in (("n_episodes", n_episodes), ("n_envs", n_envs)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"evaluate: {name} must be a positive integer, got {value!r}")
    n_episodes, n_envs = int(n_episodes), int(n_envs)
    is_dataset = hasattr(reference, "storage")  # a MinariDataset
    if reference is not None and not (is_dataset or isinstance(reference, tuple | list | np.ndarray | str)):
        raise TypeError(
            f"reference must be a pair (ref_min, ref_max), a Minari dataset or its id, got {type(reference).__name__}"
        )
    scores = reference_scores(agent if reference is None else reference)
    if reference is not None and scores is None:
        warnings.warn(
            f"evaluate: the reference {reference if isinstance(reference, str) else 'dataset'} has no finite "
            "ref_min_score and ref_max_score in its metadata, so the result has no normalized score; pass "
            "reference=(ref_min, ref_max)",
            UserWarning,
            stacklevel=2,
        )
    _warn_without_time_limit(env, make_kwargs)
    venv = make_vec_env(env, n_envs, seed, **make_kwargs)
    check_spaces_match(agent, venv)
    if isinstance(agent, TrajectoryTransformerAgent):
        agent.seed(seed)
    timings: list[float] = []
    predict = agent.predict

    def timed_predict(*args: Any, **kwargs: Any) -> tuple[np.ndarray, AgentState]:
        start = time.perf_counter()
        out = predict(*args, **kwargs)
        timings.append(time.perf_counter() - start)
        return out

    progress = make_progress(TextColumn("episodes  {task.fields[last]}"), show=show_progress)
    with progress:
        task = progress.add_task("evaluating", total=n_episodes, last="")
        callback = _EpisodeTracker(progress, task, use_rewards, venv.num_envs)
        agent.predict = timed_predict  # type: ignore[method-assign]
        try:
            returns, lengths = evaluate_policy(
                agent, venv, n_eval_episodes=n_episodes, return_episode_rewards=True, callback=callback, warn=False
            )
        finally:
            del agent.predict
    ms_per_call = 1000.0 * float(np.mean(timings))
    normalized = None if scores is None or _cut_short(env, make_kwargs) else normalized_score(returns, *scores)
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
