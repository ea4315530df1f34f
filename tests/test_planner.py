"""Beam-search planner: scorers, batching over environments, determinism."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from tt_agents.config import ModelConfig, PlannerConfig
from tt_agents.layout import TransitionLayout
from tt_agents.model import TrajectoryGPT
from tt_agents.planner import BeamPlanner, BeamState, PlanningContext, QScorer, RewardScorer
from tt_agents.tokenizer import Tokenizer

LAYOUT = TransitionLayout(observation_dim=3, action_dim=2)
N_BINS = 12


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer(N_BINS, "uniform").fit(np.random.default_rng(0).uniform(-1, 1, (500, LAYOUT.n_columns)))


@pytest.fixture(scope="module")
def model() -> TrajectoryGPT:
    torch.manual_seed(0)
    return TrajectoryGPT(LAYOUT, N_BINS, ModelConfig(n_layer=1, n_head=2, n_embd=16, sequence_length=4)).eval()


def context(rng: np.random.Generator, past: list[int]) -> PlanningContext:
    return PlanningContext(
        observations=[rng.uniform(-1, 1, (k + 1, 3)) for k in past],
        actions=[rng.uniform(-1, 1, (k, 2)) for k in past],
        rewards=[rng.uniform(-1, 1, k) for k in past],
    )


def test_density_ranking_changes_nothing_for_uniform_bins(model, tokenizer) -> None:
    plans = {}
    for ranking in ("probability", "density"):
        config = PlannerConfig(beam_width=4, n_expand=2, horizon=2, max_context_transitions=2, bin_ranking=ranking)
        plans[ranking] = BeamPlanner(model, tokenizer, config).plan(context(np.random.default_rng(0), past=[0, 2]))
    np.testing.assert_array_equal(plans["probability"].actions, plans["density"].actions)
    np.testing.assert_allclose(plans["probability"].scores, plans["density"].scores, rtol=1e-5)


def state_with(rewards: list[list[float]], values: list[list[float]]) -> BeamState:
    rows, horizon = len(rewards), len(rewards[0])
    return BeamState(
        log_prob=torch.zeros(rows),
        rewards=torch.tensor(rewards),
        values=torch.tensor(values),
        obs_tokens=torch.zeros(rows, horizon, 3, dtype=torch.long),
        act_tokens=torch.zeros(rows, horizon, 2, dtype=torch.long),
        anchored=torch.zeros(rows, dtype=torch.bool),
        first_actions=torch.zeros(rows, 2),
    )


def test_reward_scorer_adds_discounted_rewards_and_the_last_value() -> None:
    state = state_with([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0]], [[0.0, 10.0, 0.0], [5.0, 5.0, 0.0]])
    scores = RewardScorer(0.5)(state, t=1)
    torch.testing.assert_close(scores, torch.tensor([1.0 + 0.5 * 2.0 + 0.25 * 10.0, 0.25 * 5.0]))


def test_q_scorer_ranks_beams_by_the_given_q(tokenizer) -> None:
    state = state_with([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]], [[0.0, 0.0]] * 3)
    state.act_tokens[:, 1, 0] = torch.tensor([0, N_BINS - 1, N_BINS // 2])  # first action dim low, high, middle

    def q(observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return 10.0 * actions[:, 0]  # prefers large first action dimension

    scores = QScorer(q, tokenizer, LAYOUT, discount=0.9)(state, t=1)
    assert scores.argsort(descending=True).tolist() == [1, 2, 0]
    actions = tokenizer.decode(state.act_tokens[:, 1], columns=LAYOUT.action_slice)
    torch.testing.assert_close(scores, 1.0 + 0.9 * 10.0 * actions[:, 0])


def test_q_scorer_takes_arrays_and_refuses_the_wrong_number_of_values(tokenizer) -> None:
    state = state_with([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]], [[0.0, 0.0]] * 3)
    state.act_tokens[:, 1, 0] = torch.tensor([0, N_BINS - 1, N_BINS // 2])

    def q_numpy(observations: torch.Tensor, actions: torch.Tensor) -> np.ndarray:  # e.g. a CPU model's answer
        return 10.0 * actions[:, :1].cpu().numpy().astype(np.float64)  # (R, 1) float64

    scores = QScorer(q_numpy, tokenizer, LAYOUT, discount=0.9)(state, t=1)
    assert scores.dtype == state.rewards.dtype and scores.argsort(descending=True).tolist() == [1, 2, 0]
    with pytest.raises(ValueError, match="returned 1 values for 3"):
        QScorer(lambda o, a: torch.zeros(1), tokenizer, LAYOUT, discount=0.9)(state, t=1)


def test_value_quantile_scores_the_same_plan_with_that_quantile_of_reward_and_value(model, tokenizer) -> None:
    ctx = context(np.random.default_rng(9), past=[0, 2])
    one_path = PlannerConfig(beam_width=1, n_expand=1, horizon=3, max_context_transitions=2)  # nothing to rank
    plans = {q: BeamPlanner(model, tokenizer, replace(one_path, value_quantile=q)).plan(ctx) for q in (None, 0.1, 0.9)}
    for q in (0.1, 0.9):  # the same sampled path, read at another point of each predicted distribution
        np.testing.assert_array_equal(plans[q].actions, plans[None].actions)
    low, high = plans[0.1], plans[0.9]
    assert (low.rewards < high.rewards).all() and (low.values < high.values).all()
    for plan in plans.values():
        state = state_with(plan.rewards.tolist(), plan.values.tolist())
        torch.testing.assert_close(RewardScorer(0.99)(state, t=2), torch.as_tensor(plan.scores), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("q", [0.0, 1.0, 1.5])
def test_a_value_quantile_outside_the_open_unit_interval_is_refused(q) -> None:
    with pytest.raises(ValueError, match="value_quantile"):
        PlannerConfig(value_quantile=q)


@pytest.mark.parametrize("mode", ["reward", "imitation"])
def test_plan_shapes_for_environments_with_different_histories(model, tokenizer, mode) -> None:
    planner = BeamPlanner(
        model, tokenizer, PlannerConfig(mode=mode, beam_width=4, horizon=3, max_context_transitions=2)
    )
    plan = planner.plan(context(np.random.default_rng(0), past=[0, 1, 5]))
    assert plan.actions.shape == (3, 3, 2) and plan.observations.shape == (3, 3, 3)
    assert plan.rewards.shape == plan.values.shape == (3, 3) and plan.scores.shape == (3,)
    assert np.isfinite(plan.scores).all()


def test_batched_planning_equals_planning_each_environment_alone(model, tokenizer) -> None:
    config = PlannerConfig(beam_width=3, n_expand=2, horizon=4, k_act=1, cdf_act=None, max_context_transitions=2)
    planner = BeamPlanner(model, tokenizer, config)  # greedy actions: no randomness to differ by batch
    ctx = context(np.random.default_rng(1), past=[0, 2, 1])
    batched = planner.plan(ctx)
    for i in range(3):
        alone = planner.plan(PlanningContext([ctx.observations[i]], [ctx.actions[i]], [ctx.rewards[i]]))
        np.testing.assert_allclose(alone.actions[0], batched.actions[i], atol=1e-6)
        np.testing.assert_allclose(alone.scores[0], batched.scores[i], atol=1e-4)


def test_planning_is_deterministic_for_a_seed(model, tokenizer) -> None:
    config = PlannerConfig(beam_width=4, horizon=6, max_context_transitions=3, seed=5)  # slides the window
    ctx = context(np.random.default_rng(2), past=[3, 3])
    first = BeamPlanner(model, tokenizer, config).plan(ctx)
    second = BeamPlanner(model, tokenizer, config).plan(ctx)
    np.testing.assert_array_equal(first.actions, second.actions)
    planner = BeamPlanner(model, tokenizer, config)
    planner.plan(ctx)
    planner.seed(5)
    np.testing.assert_array_equal(planner.plan(ctx).actions, first.actions)


def test_q_mode_without_a_q_function_is_a_clear_error(model, tokenizer) -> None:
    with pytest.raises(ValueError, match="Q-function"):
        BeamPlanner(model, tokenizer, PlannerConfig(mode="q"))


@pytest.mark.parametrize(
    "device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]
)
def test_planning_runs_on_the_model_device_with_goal_and_padding(tokenizer, device) -> None:
    layout = TransitionLayout(observation_dim=3, action_dim=2, goal_dim=2)
    goal_tokenizer = Tokenizer(N_BINS).fit(np.random.default_rng(3).uniform(-1, 1, (500, layout.n_columns)))
    torch.manual_seed(0)
    model = TrajectoryGPT(layout, N_BINS, ModelConfig(n_layer=1, n_head=2, n_embd=16, sequence_length=4))
    planner = BeamPlanner(model.to(device).eval(), goal_tokenizer, PlannerConfig(mode="goal", beam_width=3, horizon=5))
    ctx = context(np.random.default_rng(4), past=[0, 4])
    ctx.goals = np.zeros((2, 2))
    plan = planner.plan(ctx)
    assert plan.actions.shape == (2, 5, 2) and np.isfinite(plan.scores).all()


@pytest.mark.parametrize("mode", ["reward", "imitation"])
@pytest.mark.parametrize(
    "device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]
)
def test_planning_from_padded_contexts_without_a_goal_stays_finite_on_the_model_device(tokenizer, device, mode) -> None:
    # a pad query sees only masked keys here (no goal prefix); some CUDA kernels return NaN for such rows, and
    # with two layers a NaN at a pad would reach every real token
    torch.manual_seed(0)
    model = TrajectoryGPT(LAYOUT, N_BINS, ModelConfig(n_layer=2, n_head=2, n_embd=16, sequence_length=4))
    planner = BeamPlanner(model.to(device).eval(), tokenizer, PlannerConfig(mode=mode, beam_width=3, horizon=3))
    plan = planner.plan(context(np.random.default_rng(4), past=[0, 1, 5]))
    assert np.isfinite(plan.actions).all() and np.isfinite(plan.scores).all()


def test_imitation_acts_with_the_models_expected_action_dimension_by_dimension(model, tokenizer) -> None:
    config = PlannerConfig(mode="imitation", beam_width=3, n_expand=2, horizon=2, max_context_transitions=2)
    planner = BeamPlanner(model, tokenizer, config)
    ctx = context(np.random.default_rng(1), past=[2])
    plan = planner.plan(ctx)
    tokens, _ = planner.context_tokens(ctx)  # (1, T), no pads: a full context
    expected = []
    for j in range(LAYOUT.action_dim):
        with torch.no_grad():
            logits, _ = model(tokens)
        column = LAYOUT.action_slice.start + j
        mean = tokenizer.expectation(logits[:, -1, :N_BINS].softmax(-1), column)  # (1,)
        expected.append(float(mean[0]))
        tokens = torch.cat([tokens, tokenizer.encode(mean[:, None], columns=[column])], dim=1)
    np.testing.assert_allclose(plan.actions[0, 0], expected, rtol=1e-5)
    most_likely = BeamPlanner(model, tokenizer, replace(config, imitation_action="most_likely")).plan(ctx)
    assert not np.allclose(most_likely.actions[0, 0], expected), "the paper's planner acts with a sampled beam"


def anchored_planner(model, tokenizer, margin: float | None, **overrides) -> BeamPlanner:
    config = PlannerConfig(beam_width=4, n_expand=2, horizon=3, max_context_transitions=2, anchor_margin=margin)
    return BeamPlanner(model, tokenizer, replace(config, **overrides))


def test_a_large_anchor_margin_acts_with_the_expected_action_imitation_acts_with(model, tokenizer) -> None:
    ctx = context(np.random.default_rng(5), past=[0, 1, 3])
    plan = anchored_planner(model, tokenizer, 1e9).plan(ctx)
    imitation = anchored_planner(model, tokenizer, None, mode="imitation").plan(ctx)
    np.testing.assert_allclose(plan.actions[:, 0], imitation.actions[:, 0], rtol=1e-5)
    assert plan.anchored is not None and plan.anchored.all()
    assert anchored_planner(model, tokenizer, None).plan(ctx).anchored is None


def test_the_anchor_is_left_exactly_where_the_best_plan_beats_it_by_more_than_the_margin(model, tokenizer) -> None:
    ctx = context(np.random.default_rng(6), past=[0, 2, 1, 3, 2, 0])
    anchor = anchored_planner(model, tokenizer, 1e9).plan(ctx)  # the margin changes only the final choice
    best = anchored_planner(model, tokenizer, 0.0).plan(ctx)
    value_edges = tokenizer.edges[LAYOUT.value_index]
    gain = (best.scores - anchor.scores) / (value_edges[-1] - value_edges[0])  # the margin's unit
    assert (gain >= 0).all() and (gain > 0).any()
    np.testing.assert_allclose(anchor.anchor_gain, gain, rtol=1e-5, atol=1e-6)
    margin = float(np.median(gain[gain > 0]))
    between = anchored_planner(model, tokenizer, margin).plan(ctx)
    np.testing.assert_array_equal(between.anchored, gain <= margin)
    np.testing.assert_allclose(between.scores, np.where(gain <= margin, anchor.scores, best.scores), rtol=1e-6)
    np.testing.assert_allclose(between.actions[between.anchored], anchor.actions[between.anchored])


def test_the_anchor_margin_is_a_fraction_of_the_reward_to_go_range_so_reward_scale_does_not_matter(
    model, tokenizer
) -> None:
    data = np.random.default_rng(0).uniform(-1, 1, (500, LAYOUT.n_columns))
    data[:, LAYOUT.reward_index :] *= 100.0  # rewards and reward-to-go a hundred times larger
    scaled = Tokenizer(N_BINS, "uniform").fit(data)
    ctx = context(np.random.default_rng(6), past=[0, 2, 1, 3, 2, 0])
    gain = anchored_planner(model, tokenizer, 1e9).plan(ctx).anchor_gain
    margin = float(np.median(gain[gain > 0]))
    scaled_ctx = replace(ctx, rewards=[100.0 * r for r in ctx.rewards])  # the same tokens
    plans = [
        anchored_planner(model, tokenizer, margin).plan(ctx),
        anchored_planner(model, scaled, margin).plan(scaled_ctx),
    ]
    np.testing.assert_allclose(plans[1].scores, 100.0 * plans[0].scores, rtol=1e-4)
    np.testing.assert_allclose(plans[1].anchor_gain, plans[0].anchor_gain, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(plans[1].anchored, plans[0].anchored)
    assert plans[0].anchored.any() and not plans[0].anchored.all()


def test_the_best_anchored_plan_survives_every_pruning(model, tokenizer) -> None:
    def shun_the_anchor(state: BeamState, t: int) -> torch.Tensor:  # every other candidate ranks above it
        return RewardScorer(0.99)(state, t) - 1000.0 * state.anchored

    config = PlannerConfig(beam_width=2, n_expand=3, horizon=4, max_context_transitions=2, anchor_margin=1e9)
    plan = BeamPlanner(model, tokenizer, config, scorer=shun_the_anchor).plan(context(np.random.default_rng(7), [1, 2]))
    assert plan.anchored.all() and (plan.scores < -500).all()


def test_the_anchor_margin_leaves_likelihood_modes_alone(model, tokenizer) -> None:
    ctx = context(np.random.default_rng(8), past=[2, 0])
    plain = anchored_planner(model, tokenizer, None, mode="imitation").plan(ctx)
    margin = anchored_planner(model, tokenizer, 3.0, mode="imitation").plan(ctx)
    np.testing.assert_array_equal(plain.actions, margin.actions)
    assert margin.anchored is None


@pytest.mark.parametrize("margin", [-1.0, float("inf"), float("nan")])
def test_a_negative_or_infinite_anchor_margin_is_refused(margin) -> None:
    with pytest.raises(ValueError, match="anchor_margin"):
        PlannerConfig(anchor_margin=margin)


def spread_planner(model, tokenizer, spread: float | None, **overrides) -> BeamPlanner:
    return anchored_planner(model, tokenizer, None, action_spread=spread, **overrides)  # the same small search


def test_no_action_spread_plans_with_the_expected_action_imitation_acts_with(model, tokenizer) -> None:
    ctx = context(np.random.default_rng(9), past=[0, 1, 3])
    plan = spread_planner(model, tokenizer, 0.0).plan(ctx)
    imitation = spread_planner(model, tokenizer, None, mode="imitation").plan(ctx)
    np.testing.assert_allclose(plan.actions[:, 0], imitation.actions[:, 0], rtol=1e-5)


def test_actions_drawn_around_the_expected_action_are_continuous_and_stay_near_it(model, tokenizer) -> None:
    ctx = context(np.random.default_rng(10), past=[2])
    expected = spread_planner(model, tokenizer, None, mode="imitation").plan(ctx).actions[0, 0]
    planner = spread_planner(model, tokenizer, 0.5)
    firsts = []
    for seed in range(40):
        planner.seed(seed)
        firsts.append(planner.plan(ctx).actions[0, 0])
    firsts = np.array(firsts)  # (40, A)
    centers = tokenizer.centers[LAYOUT.action_slice]  # (A, N)
    assert not np.isin(firsts, centers).all(), "the agent acts with the drawn value, not its bin's centre"
    low, high = tokenizer.edges[LAYOUT.action_slice, 0], tokenizer.edges[LAYOUT.action_slice, -1]
    assert ((firsts >= low) & (firsts <= high)).all()
    assert len(np.unique(firsts[:, 0])) > 1, "a spread above 0 compares different actions"
    wide = spread_planner(model, tokenizer, None)  # sampled from the most likely bins
    sampled = []
    for seed in range(40):
        wide.seed(seed)
        sampled.append(wide.plan(ctx).actions[0, 0])
    assert np.abs(firsts - expected).mean() < np.abs(np.array(sampled) - expected).mean()


def test_planning_around_the_expected_action_is_deterministic_for_a_seed(model, tokenizer) -> None:
    ctx = context(np.random.default_rng(11), past=[1, 3])
    plans = [spread_planner(model, tokenizer, 0.5, seed=3).plan(ctx) for _ in range(2)]
    np.testing.assert_array_equal(plans[0].actions, plans[1].actions)
    np.testing.assert_array_equal(plans[0].scores, plans[1].scores)


@pytest.mark.parametrize("spread", [-0.1, float("inf"), float("nan")])
def test_a_negative_or_infinite_action_spread_is_refused(spread) -> None:
    with pytest.raises(ValueError, match="action_spread"):
        PlannerConfig(action_spread=spread)


@pytest.mark.parametrize("decoding", ["cached", "static"])
def test_averaging_contexts_acts_with_the_mean_expected_action_of_every_length_the_episode_has(
    model, tokenizer, decoding
) -> None:
    config = PlannerConfig(mode="imitation", beam_width=3, horizon=2, max_context_transitions=3, decoding=decoding)
    ctx = context(np.random.default_rng(5), past=[0, 1, 3, 6])
    averaged = BeamPlanner(model, tokenizer, replace(config, average_contexts=True)).plan(ctx)
    whole = BeamPlanner(model, tokenizer, config).plan(ctx)
    for i, past in enumerate([0, 1, 3, 6]):
        firsts = []
        for k in range(min(past, 3) + 1):  # one plan per length the episode has, each from its own planner
            obs, act, rew = ctx.observations[i][-k - 1 :], ctx.actions[i][past - k :], ctx.rewards[i][past - k :]
            cut = PlanningContext([obs], [act], [rew])
            alone = BeamPlanner(model, tokenizer, replace(config, max_context_transitions=k))
            firsts.append(alone.plan(cut).actions[0, 0])
        np.testing.assert_allclose(averaged.actions[i, 0], np.mean(firsts, axis=0), atol=1e-5)
    np.testing.assert_allclose(averaged.actions[0], whole.actions[0], atol=1e-6)  # no past: nothing to average
    assert not np.allclose(averaged.actions[3, 0], whole.actions[3, 0])
    np.testing.assert_array_equal(averaged.actions[:, 1:], whole.actions[:, 1:])  # the rest: the whole context's
    np.testing.assert_array_equal(averaged.values, whole.values)
    np.testing.assert_array_equal(averaged.scores, whole.scores)


def test_averaging_contexts_leaves_the_other_modes_and_the_most_likely_action_alone(model, tokenizer) -> None:
    ctx = context(np.random.default_rng(6), past=[2, 4])
    for config in (
        PlannerConfig(mode="reward", beam_width=3, horizon=2, max_context_transitions=2, seed=1),
        PlannerConfig(mode="imitation", imitation_action="most_likely", beam_width=3, horizon=2, seed=1),
    ):
        plain = BeamPlanner(model, tokenizer, config).plan(ctx)
        averaged = BeamPlanner(model, tokenizer, replace(config, average_contexts=True)).plan(ctx)
        np.testing.assert_array_equal(plain.actions, averaged.actions)
