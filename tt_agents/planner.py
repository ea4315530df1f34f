"""Beam-search planning with the Trajectory GPT (paper Section 3.2 and Appendix E).

One loop, batched over environments and beams, on the model's KV cache. Each planning step:

1. every beam is copied ``n_expand`` times (the first step starts ``beam_width * n_expand`` candidates from
   the context) and action tokens are sampled from the most likely tokens holding ``cdf_act`` of the mass (or
   the top ``k_act``);
2. reward and reward-to-go are read from the model (their expectation, or ``value_quantile``, feeds the score);
3. a :class:`Scorer` ranks the candidates and the best ``beam_width`` per environment are kept;
4. the next observation is decoded (greedily with ``k_obs = 1``).

With ``action_spread``, continuous action dimensions are drawn around their expected value instead of from the
most likely bins (each way of picking a token is :class:`tt_agents.sampling.TokenSampler`'s). With
``anchor_margin`` (reward and q modes), one first-step candidate per environment takes the expected action instead
of a sampled one, the best plan descending from it is always kept, and the planner acts with the expected action
unless the best plan beats that one by more than the margin.

Only the planned suffix of each beam lives in per-beam cache rows; the context is shared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from .config import PlannerConfig
from .decoders import CachedDecoder, Decoder, StaticDecoder
from .layout import TransitionLayout
from .model import TrajectoryGPT
from .qfunctions import QFunction
from .sampling import TokenSampler
from .spaces import device_memory
from .tokenizer import Tokenizer


@dataclass
class PlanningContext:
    """What each environment has seen: past transitions and the current observation.

    observations: per env (k + 1, O), the last row being the current observation.
    actions: per env (k, A); rewards: per env (k,) (real, or the model's own prediction when unknown).
    goals: (E, G) desired goals for goal-conditioned models, else None.
    maps: (E, H, W) each environment's map, for models that read one (``ModelConfig.map_shape``), else None.
    """

    observations: Sequence[np.ndarray]
    actions: Sequence[np.ndarray]
    rewards: Sequence[np.ndarray]
    goals: np.ndarray | None = None
    maps: np.ndarray | None = None


@dataclass
class Plan:
    """The best plan per environment (decoded bin centres)."""

    observations: np.ndarray  # (E, H, O); row 0 is the current observation as the model sees it
    actions: np.ndarray  # (E, H, A)
    rewards: np.ndarray  # (E, H) expected reward of each planned transition (its ``value_quantile`` if set)
    values: np.ndarray  # (E, H) expected reward-to-go after each planned transition (likewise)
    scores: np.ndarray  # (E,) the scorer's value of the chosen beam
    anchored: np.ndarray | None = None  # (E,) bool: acted with the expected action (``anchor_margin``), else None
    anchor_gain: np.ndarray | None = None  # (E,) best plan's score - best anchored plan's, / reward-to-go range


@dataclass
class BeamState:
    """Per-row search state (rows are environment-major: env e owns a contiguous block)."""

    log_prob: torch.Tensor  # (R,) sum of log-probabilities of every sampled token
    rewards: torch.Tensor  # (R, H) expected rewards (or their ``value_quantile``)
    values: torch.Tensor  # (R, H) expected reward-to-go (likewise)
    obs_tokens: torch.Tensor  # (R, H, O)
    act_tokens: torch.Tensor  # (R, H, A)
    anchored: torch.Tensor  # (R,) bool: the first action is the expected action (``anchor_margin``)
    first_actions: torch.Tensor  # (R, A) the action the row acts with: its first tokens' bin centres, or the
    # continuous value they were drawn from (the expected action, or a draw around it with ``action_spread``)

    def take(self, rows: torch.Tensor) -> BeamState:
        return BeamState(*(t[rows] for t in vars(self).values()))

    def repeat(self, factor: int) -> BeamState:
        return BeamState(*(t.repeat_interleave(factor, dim=0) for t in vars(self).values()))


class Scorer(Protocol):
    """Scores candidate beams after the reward and reward-to-go of planning step ``t`` are known."""

    def __call__(self, state: BeamState, t: int) -> torch.Tensor: ...


class LikelihoodScorer:
    """``imitation`` and ``goal`` modes: the log-probability of the planned tokens."""

    def __call__(self, state: BeamState, t: int) -> torch.Tensor:
        return state.log_prob


class RewardScorer:
    """``reward`` mode: sum_{i<=t} discount^i r_i + discount^(t+1) V_t."""

    def __init__(self, discount: float) -> None:
        self.discount = discount

    def __call__(self, state: BeamState, t: int) -> torch.Tensor:
        weights = self.discount ** torch.arange(t + 1, device=state.rewards.device, dtype=state.rewards.dtype)
        return (state.rewards[:, : t + 1] * weights).sum(-1) + self.discount ** (t + 1) * state.values[:, t]


class QScorer:
    """``q`` mode: sum_{i<t} discount^i r_i + discount^t Q(s_t, a_t) with a learned Q-function."""

    def __init__(self, q_function: QFunction, tokenizer: Tokenizer, layout: TransitionLayout, discount: float) -> None:
        self.q_function = q_function
        self.tokenizer = tokenizer
        self.layout = layout
        self.discount = discount

    def __call__(self, state: BeamState, t: int) -> torch.Tensor:
        observations = self.tokenizer.decode(state.obs_tokens[:, t], columns=self.layout.observation_slice)
        actions = self.tokenizer.decode(state.act_tokens[:, t], columns=self.layout.action_slice)
        values = self.q_function(observations, actions)  # a tensor on any device, or an array
        q = torch.as_tensor(values, device=state.rewards.device, dtype=state.rewards.dtype).reshape(-1)  # (R,)
        if q.numel() != len(observations):
            raise ValueError(f"the Q-function returned {q.numel()} values for {len(observations)} (obs, act) rows")
        weights = self.discount ** torch.arange(t, device=state.rewards.device, dtype=state.rewards.dtype)
        return (state.rewards[:, :t] * weights).sum(-1) + self.discount**t * q


def make_scorer(
    config: PlannerConfig, tokenizer: Tokenizer, layout: TransitionLayout, q_function: QFunction | None = None
) -> Scorer:
    """The scorer of ``config.mode``; ``q`` mode needs ``q_function``."""
    if config.mode == "reward":
        return RewardScorer(config.discount)
    if config.mode == "q":
        if q_function is None:
            raise ValueError("PlannerConfig.mode='q' needs a Q-function (q_function=...)")
        return QScorer(q_function, tokenizer, layout, config.discount)
    return LikelihoodScorer()


def make_decoder(config: PlannerConfig, model: TrajectoryGPT, keep_transitions: int) -> Decoder:
    """The decoder ``config.decoding`` names (see :mod:`tt_agents.decoders`)."""
    if config.decoding == "cached":
        return CachedDecoder(model, keep_transitions)
    rows_per_env = config.beam_width * config.n_expand
    return StaticDecoder(model, keep_transitions, rows_per_env, compiled=config.decoding == "compiled")


class BeamPlanner:
    """Plans with a trained :class:`TrajectoryGPT` for a batch of environments at once.

    Args:
        model: the trained network (its device is used).
        tokenizer: the fitted tokenizer of the model's training data.
        config: beam-search settings; ``config.mode`` picks the scorer unless ``scorer`` is given.
        q_function: needed by ``q`` mode.
        scorer: overrides the mode's scorer.
    """

    def __init__(
        self,
        model: TrajectoryGPT,
        tokenizer: Tokenizer,
        config: PlannerConfig,
        q_function: QFunction | None = None,
        scorer: Scorer | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.layout = model.layout
        self.scorer = scorer or make_scorer(config, tokenizer, model.layout, q_function)
        self.device = next(model.parameters()).device
        self.sampler = TokenSampler(tokenizer, self.device, config.bin_ranking, config.seed)
        seq = model.config.sequence_length
        # a network trained on maps that change reads the current map with the current step alone (map_per_step)
        self.context_transitions = 0 if model.config.map_per_step else min(config.max_context_transitions, seq - 1)
        self.keep_transitions = max(1, min(config.max_context_transitions, seq - 1))
        self.decoder = make_decoder(config, model, self.keep_transitions)
        self.expected_first = config.mode == "imitation" and config.imitation_action == "expected"
        self.averaging_contexts = self.expected_first and config.average_contexts and self.context_transitions > 0
        self.anchoring = config.anchor_margin is not None and config.mode in ("reward", "q")
        self.value_range = max(float(np.ptp(tokenizer.edges[self.layout.value_index])), 1e-30)  # the anchor's unit

    def seed(self, seed: int | None) -> None:
        """Re-seed the sampling generator (``None``: a random seed)."""
        self.sampler.seed(seed)

    # ---- context -------------------------------------------------------------------------------------

    def context_tokens(self, context: PlanningContext) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens (E, T) of each environment's context and pads (E,).

        Every context is left-padded to ``context_transitions`` transitions, so an environment plans the same
        whether it is alone or batched with others (the window slides at the same step for all).
        """
        lay, D = self.layout, self.layout.transition_dim
        rows = []
        for obs, act, rew in zip(context.observations, context.actions, context.rewards, strict=True):
            k = min(len(act), self.context_transitions)
            past = np.zeros((k, D), dtype=np.float64)
            if k:
                past[:, lay.observation_slice] = obs[-k - 1 : -1]
                past[:, lay.action_slice] = act[-k:]
                past[:, lay.reward_index] = rew[-k:]
            past_tokens = self.tokenizer.encode(past[:, : lay.value_index], columns=slice(0, lay.value_index))
            value_placeholder = np.zeros((k, 1), dtype=np.int64)  # never attended to
            current = self.tokenizer.encode(obs[-1], columns=lay.observation_slice)
            rows.append(np.concatenate([np.concatenate([past_tokens, value_placeholder], 1).ravel(), current]))
        longest = self.context_transitions * D + lay.observation_dim
        pads = np.array([longest - len(r) for r in rows])
        tokens = np.stack([np.concatenate([np.zeros(p, dtype=np.int64), r]) for p, r in zip(pads, rows, strict=True)])
        if lay.goal_dim:
            if context.goals is None:
                raise ValueError("BeamPlanner: this model is goal-conditioned; the context needs goals (E, G)")
            goals = self.tokenizer.encode(np.asarray(context.goals, dtype=np.float64), columns=lay.goal_slice)
            tokens = np.concatenate([goals, tokens], axis=1)
        return torch.as_tensor(tokens, device=self.device), torch.as_tensor(pads, device=self.device)

    # ---- search --------------------------------------------------------------------------------------

    @torch.no_grad()
    def plan(self, context: PlanningContext) -> Plan:
        """Search from every environment's context; returns the best plan of each. The search runs in the model's
        own precision, also where the caller has turned autocast on."""
        with torch.autocast(self.device.type, enabled=False):
            if self.averaging_contexts:
                return self._search_averaging_contexts(context)
            return self._search(context)

    def _search_averaging_contexts(self, context: PlanningContext) -> Plan:
        """``average_contexts``: the search from the whole context, and the expected first action from every
        environment's context cut to its last 0, 1, ..., K - 1 transitions (one batched pass); each environment acts
        with the mean of the expected first actions of the lengths it has."""
        K, E = self.context_transitions, len(context.observations)

        def tiled(rows: np.ndarray | None) -> np.ndarray | None:  # one copy per cut, rows k * E + e
            return None if rows is None else np.concatenate([np.asarray(rows)] * K)

        def last(rows: np.ndarray, k: int) -> np.ndarray:
            return rows[max(0, len(rows) - k) :]

        cut = PlanningContext(
            observations=[last(obs, k + 1) for k in range(K) for obs in context.observations],
            actions=[last(act, k) for k in range(K) for act in context.actions],
            rewards=[last(rew, k) for k in range(K) for rew in context.rewards],
            goals=tiled(context.goals),
            maps=tiled(context.maps),
        )
        plan = self._search(context)
        short = self._search(cut, first_only=True).actions[:, 0].reshape(K, E, -1)  # (K, E, A): rows k * E + e
        reached = np.array([min(len(act), K) for act in context.actions])  # (E,): the whole context's length
        shorter = np.arange(K)[:, None] < reached  # (K, E): the cuts shorter than the whole context
        total = plan.actions[:, 0] + (short * shorter[..., None]).sum(0)  # (E, A)
        mean = total / (1 + shorter.sum(0))[:, None]
        continuous = [n is None for n in self.tokenizer.categories[self.layout.action_slice]]
        plan.actions[:, 0, continuous] = mean[:, continuous]
        return plan

    def _search(self, context: PlanningContext, first_only: bool = False) -> Plan:
        """The beam search; ``first_only``: one candidate per environment and one planned transition (all that
        the expected first action of imitation mode needs)."""
        cfg, lay = self.config, self.layout
        O, A, N, H = lay.observation_dim, lay.action_dim, self.tokenizer.n_bins, 1 if first_only else cfg.horizon
        first_children = 1 if first_only else cfg.beam_width * cfg.n_expand
        tokens, pads = self.context_tokens(context)
        E = tokens.shape[0]
        self.check_memory(E)
        decoder = self.decoder
        maps = None if context.maps is None else torch.as_tensor(np.asarray(context.maps), device=self.device)
        next_logits = decoder.start(tokens, pads, maps)  # (E, V): the first action token
        zeros = torch.zeros(E, H, device=self.device)
        state = BeamState(
            log_prob=torch.zeros(E, device=self.device),
            rewards=zeros,
            values=zeros.clone(),
            obs_tokens=torch.zeros(E, H, O, dtype=torch.long, device=self.device),
            act_tokens=torch.zeros(E, H, A, dtype=torch.long, device=self.device),
            anchored=torch.zeros(E, dtype=torch.bool, device=self.device),
            first_actions=torch.zeros(E, A, device=self.device),
        )
        state.obs_tokens[:, 0] = tokens[:, -O:]

        step = decoder.step
        for t in range(H):
            children = first_children if t == 0 else cfg.n_expand
            decoder.expand(children)
            state = state.repeat(children)
            next_logits = next_logits.repeat_interleave(children, dim=0)
            if t == 0 and self.anchoring:  # the first candidate of every environment
                state.anchored = torch.arange(E * children, device=self.device) % children == 0
            next_logits = self._decode_actions(state, next_logits, t)
            state.rewards[:, t] = self._score_value(next_logits[:, :N].softmax(-1), lay.reward_index)
            reward_token, log_prob = self.sampler.sample(next_logits, lay.reward_index, cfg.k_reward, None)
            state.log_prob += log_prob
            value_logits = step(reward_token)
            state.values[:, t] = self._score_value(value_logits[:, :N].softmax(-1), lay.value_index)
            value_token, log_prob = self.sampler.sample(value_logits, lay.value_index, cfg.k_reward, None)
            state.log_prob += log_prob

            scores = self.scorer(state, t).view(E, -1)  # (E, candidates)
            keep = scores
            if self.anchoring:  # the best candidate that starts with the expected action is always kept
                keep = scores.scatter(1, self._best_anchored(scores, state.anchored)[:, None], float("inf"))
            kept = torch.topk(keep, min(cfg.beam_width, scores.shape[1]), dim=-1).indices  # (E, beams)
            rows = (kept + torch.arange(E, device=self.device)[:, None] * scores.shape[1]).reshape(-1)
            decoder.select(rows)
            state = state.take(rows)
            value_token = value_token[rows]
            scores = scores.gather(1, kept).reshape(-1)
            if t == H - 1:
                break
            next_logits = step(value_token)
            for i in range(O):
                token, log_prob = self.sampler.sample(
                    next_logits, lay.observation_slice.start + i, cfg.k_obs, cfg.cdf_obs
                )
                state.obs_tokens[:, t + 1, i] = token
                state.log_prob += log_prob
                next_logits = step(token)
        return self._choose(state, scores.view(E, -1))

    def _score_value(self, probs: torch.Tensor, column: int) -> torch.Tensor:
        """(R, N) -> (R,): what the scorer reads of a predicted reward or reward-to-go distribution."""
        if self.config.value_quantile is None:
            return self.tokenizer.expectation(probs, column)
        return self.tokenizer.quantile(probs, column, self.config.value_quantile)

    def _decode_actions(self, state: BeamState, next_logits: torch.Tensor, t: int) -> torch.Tensor:
        """Decode planning step ``t``'s action tokens into ``state`` and return the logits (R, V) after them.

        At ``t == 0`` the rows that act with the expected action (every row in imitation mode, the anchors with
        ``anchor_margin``) take it dimension by dimension, and every row's action goes to ``state.first_actions``."""
        cfg, lay = self.config, self.layout
        expected_rows = state.anchored if t == 0 and self.anchoring else None
        for j in range(lay.action_dim):
            column = lay.action_slice.start + j
            if t == 0 and self.expected_first:
                token, log_prob, value = self.sampler.expected(next_logits, column)
            elif cfg.action_spread is not None and self.tokenizer.categories[column] is None:
                token, log_prob, value = self.sampler.around_expected(next_logits, column, cfg.action_spread)
            else:
                token, log_prob = self.sampler.sample(next_logits, column, cfg.k_act, cfg.cdf_act)
                value = self.sampler.centers[column][token] if t == 0 else None  # only the first action is acted with
            if expected_rows is not None:
                expected, expected_log_prob, mean = self.sampler.expected(next_logits, column)
                token = torch.where(expected_rows, expected, token)
                log_prob = torch.where(expected_rows, expected_log_prob, log_prob)
                value = torch.where(expected_rows, mean, value)
            if t == 0:
                state.first_actions[:, j] = value
            state.act_tokens[:, t, j] = token
            state.log_prob += log_prob
            next_logits = self.decoder.step(token)
        return next_logits

    def _choose(self, state: BeamState, scores: torch.Tensor) -> Plan:
        """Each environment's plan among its final beams' ``scores`` (E, beams): the best, or with
        ``anchor_margin`` the best anchored one unless the best beats it by more than the margin (a fraction of the
        fitted reward-to-go range)."""
        best = scores.argmax(-1)  # (E,)
        if not self.anchoring:
            return self._plan_of(state, scores, best)
        best_anchored = self._best_anchored(scores, state.anchored)
        gain = scores.gather(1, best[:, None]) - scores.gather(1, best_anchored[:, None])  # (E, 1)
        gain = gain / self.value_range  # in units of the reward-to-go range, the margin's
        use_anchor = gain.squeeze(1) <= self.config.anchor_margin  # (E,)
        plan = self._plan_of(state, scores, torch.where(use_anchor, best_anchored, best))
        plan.anchored, plan.anchor_gain = use_anchor.cpu().numpy(), gain.squeeze(1).cpu().numpy()
        return plan

    def memory_estimate(self, n_envs: int) -> int:
        """Bytes the search's per-beam keys and values take for ``n_envs`` environments (a lower bound of its
        footprint): rows x planned tokens (static decoding: a whole window) x layers x (key + value) x width."""
        cfg, c = self.config, self.model.config
        rows = n_envs * cfg.beam_width * cfg.n_expand
        tokens = (cfg.horizon + 1) * self.layout.transition_dim
        if cfg.decoding != "cached":
            tokens = self.model.block_size - self.layout.goal_dim
        return rows * tokens * c.n_layer * 2 * c.n_embd * self.model.pos_emb.element_size()

    def check_memory(self, n_envs: int) -> None:
        """Refuse up front a search that cannot fit in the device's memory (e.g. ``beam_width=10**9``)."""
        need = self.memory_estimate(n_envs)
        have = device_memory(self.device)
        if have is not None and need > have:
            cfg = self.config
            raise ValueError(
                f"BeamPlanner: beam_width {cfg.beam_width} x n_expand {cfg.n_expand} x {n_envs} environment(s) over a "
                f"horizon of {cfg.horizon} needs at least {need / 2**30:.1f} GiB for its keys and values; "
                f"the {self.device.type} device has {have / 2**30:.1f} GiB"
            )

    @staticmethod
    def _best_anchored(scores: torch.Tensor, anchored: torch.Tensor) -> torch.Tensor:
        """Per environment, the index (E,) of the best-scoring row of ``scores`` (E, C) whose first action is the
        expected one (every environment keeps at least one)."""
        return scores.masked_fill(~anchored.view(scores.shape), float("-inf")).argmax(-1)

    def _plan_of(self, state: BeamState, scores: torch.Tensor, choice: torch.Tensor) -> Plan:
        """The plan of each environment's beam ``choice`` (E,) among its ``scores`` (E, beams)."""
        n_envs, beams = scores.shape
        best = choice + torch.arange(n_envs, device=self.device) * beams  # (E,) rows
        scores = scores.reshape(-1)
        lay = self.layout
        actions = self.tokenizer.decode(state.act_tokens[best], columns=lay.action_slice)  # (E, H, A)
        actions[:, 0] = state.first_actions[best]
        return Plan(
            observations=self.tokenizer.decode(state.obs_tokens[best], columns=lay.observation_slice).cpu().numpy(),
            actions=actions.cpu().numpy(),
            rewards=state.rewards[best].cpu().numpy(),
            values=state.values[best].cpu().numpy(),
            scores=scores[best].cpu().numpy(),
        )
