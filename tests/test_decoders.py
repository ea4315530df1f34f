"""Decoders: the static-shape decoder (eager and compiled) plans exactly as the segmented cache does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import EMBEDDINGS, network_config

from tt_agents.config import PlannerConfig
from tt_agents.decoders import CachedDecoder, StaticDecoder
from tt_agents.layout import TransitionLayout
from tt_agents.model import TrajectoryGPT
from tt_agents.planner import BeamPlanner, PlanningContext
from tt_agents.tokenizer import Tokenizer

N_BINS = 12
CUDA = pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))
LAYOUT = TransitionLayout(observation_dim=3, action_dim=2)
GOAL_LAYOUT = TransitionLayout(observation_dim=3, action_dim=2, goal_dim=2)


def network(
    layout: TransitionLayout, sequence_length: int = 4, device: str = "cpu", embedding: str = "table"
) -> tuple[TrajectoryGPT, Tokenizer]:
    """A random network; ``embedding``: ``table`` (the paper's), ``ordinal`` (plus an ordinal direction) or
    ``place`` (continuous bins embedded by place, plus the ordinal direction)."""
    tokenizer = Tokenizer(N_BINS, "quantile").fit(np.random.default_rng(0).normal(size=(500, layout.n_columns)))
    torch.manual_seed(0)
    config = network_config(embedding, n_embd=16, sequence_length=sequence_length)
    model = TrajectoryGPT(layout, N_BINS, config)
    if config.ordinal_embedding:  # trained directions, not the zeros a new network starts from
        torch.nn.init.normal_(model.ordinal_emb)
    return model.to(device).eval(), tokenizer


def contexts(past: list[int], goal: bool = False, seed: int = 0) -> PlanningContext:
    rng = np.random.default_rng(seed)
    return PlanningContext(
        observations=[rng.normal(size=(k + 1, 3)) for k in past],
        actions=[rng.normal(size=(k, 2)) for k in past],
        rewards=[rng.normal(size=k) for k in past],
        goals=rng.normal(size=(len(past), 2)) if goal else None,
    )


def q_function(observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    return observations.sum(-1) - actions.pow(2).sum(-1)


def plans(model, tokenizer, config: PlannerConfig, ctx: PlanningContext, decodings: list[str]) -> list:
    q = q_function if config.mode == "q" else None
    out = []
    for decoding in decodings:
        planner = BeamPlanner(model, tokenizer, PlannerConfig(**{**vars(config), "decoding": decoding}), q)
        out.append([planner.plan(ctx) for _ in range(2)])  # the second plan reuses the decoder's buffers
    return out


def assert_same_plans(reference, other) -> None:
    for expected, got in zip(reference, other, strict=True):  # imitation's expected action is a float, not a bin
        np.testing.assert_allclose(got.actions, expected.actions, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(got.observations, expected.observations)
        np.testing.assert_allclose(got.scores, expected.scores, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["reward", "imitation", "q", "goal"])
@pytest.mark.parametrize("past", [[3], [0, 1, 5]], ids=["one env", "three envs, padded"])
def test_static_decoding_plans_the_same_tokens_as_the_cached_reference(mode, past) -> None:
    goal = mode == "goal"
    model, tokenizer = network(GOAL_LAYOUT if goal else LAYOUT)
    # horizon 6 over a 4-transition window: the window slides twice while planning
    config = PlannerConfig(mode=mode, beam_width=3, n_expand=2, horizon=6, max_context_transitions=2, seed=3)
    cached, static = plans(model, tokenizer, config, contexts(past, goal), ["cached", "static"])
    assert_same_plans(cached, static)


@pytest.mark.parametrize("decoding", ["cached", "static"])
def test_a_callers_bfloat16_autocast_does_not_change_the_plans(decoding) -> None:
    model, tokenizer = network(LAYOUT)
    config = PlannerConfig(beam_width=3, n_expand=2, horizon=6, max_context_transitions=2, seed=3, decoding=decoding)
    planner = BeamPlanner(model, tokenizer, config)
    expected = planner.plan(contexts([0, 1, 5]))
    planner.seed(3)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as a GPU inference loop often runs
        got = planner.plan(contexts([0, 1, 5]))
    assert_same_plans([expected], [got])


@pytest.mark.parametrize("mode", ["reward", "q"])
def test_static_decoding_keeps_the_anchor_as_the_cached_reference_does(mode) -> None:
    model, tokenizer = network(LAYOUT)
    config = PlannerConfig(mode=mode, beam_width=3, n_expand=2, horizon=6, max_context_transitions=2, anchor_margin=0.5)
    cached, static = plans(model, tokenizer, config, contexts([0, 1, 5]), ["cached", "static"])
    assert_same_plans(cached, static)
    for expected, got in zip(cached, static, strict=True):
        np.testing.assert_array_equal(got.anchored, expected.anchored)


@pytest.mark.parametrize("compiled", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["eager", "compiled"])
@pytest.mark.parametrize("device", ["cpu", CUDA])
@pytest.mark.parametrize("embedding", EMBEDDINGS)
def test_static_logits_equal_the_cached_logits_token_by_token(device, compiled, embedding) -> None:
    model, tokenizer = network(GOAL_LAYOUT, sequence_length=3, device=device, embedding=embedding)
    planner = BeamPlanner(model, tokenizer, PlannerConfig(mode="goal", max_context_transitions=2))
    tokens, pads = planner.context_tokens(contexts([0, 4], goal=True))
    cached, static = CachedDecoder(model, keep_transitions=2), StaticDecoder(model, 2, 4, compiled=compiled)
    torch.testing.assert_close(static.start(tokens, pads), cached.start(tokens, pads))
    rng = torch.Generator().manual_seed(0)

    def step_both(n_tokens: int) -> None:
        for _ in range(n_tokens):
            rows = 8 if n_tokens == LAYOUT.action_dim + 1 else 4
            new = torch.randint(0, N_BINS, (rows,), generator=rng).to(device)
            torch.testing.assert_close(static.step(new), cached.step(new), rtol=1e-4, atol=1e-4)

    for t in range(3):  # the planner's pattern; the 3-transition window slides
        for decoder in (cached, static):
            decoder.expand(4 if t == 0 else 2)
        step_both(LAYOUT.action_dim + 1)  # actions and reward, every candidate
        rows = torch.tensor([3, 1, 6, 6], device=device)  # two rows per environment, reordered, one kept twice
        for decoder in (cached, static):
            decoder.select(rows)
        step_both(1 + LAYOUT.observation_dim)  # reward-to-go and the next observation, the kept beams


@pytest.mark.slow
@pytest.mark.parametrize("device", ["cpu", CUDA])  # on CUDA the compiled step is replayed as a CUDA graph
@pytest.mark.parametrize("mode", ["reward", "imitation"])
def test_the_compiled_step_plans_the_same_and_compiles_once_over_two_episodes(mode, device) -> None:
    from torch._dynamo.utils import counters

    model, tokenizer = network(LAYOUT, device=device)
    config = PlannerConfig(mode=mode, beam_width=3, n_expand=2, horizon=6, max_context_transitions=2, seed=3)
    torch._dynamo.reset()
    counters.clear()
    static = BeamPlanner(model, tokenizer, PlannerConfig(**{**vars(config), "decoding": "static"}))
    compiled = BeamPlanner(model, tokenizer, PlannerConfig(**{**vars(config), "decoding": "compiled"}))
    for episode in range(2):
        static.seed(episode)
        compiled.seed(episode)
        for step in range(3):
            step_ctx = contexts([1 + step, 4 + step], seed=step)
            assert_same_plans([static.plan(step_ctx)], [compiled.plan(step_ctx)])
    graphs = counters["stats"]["unique_graphs"]
    assert graphs <= 2, f"the step compiled {graphs} times (once per row count expected)"


@pytest.mark.slow
def test_compiled_planners_for_many_environment_counts_do_not_run_out_of_recompiles() -> None:
    # every static decoder's step is one function: 5 environment counts x 2 row counts = 10 compiled versions,
    # past torch's default limit of 8
    model, tokenizer = network(LAYOUT)
    config = PlannerConfig(beam_width=2, n_expand=2, horizon=2, max_context_transitions=2, decoding="compiled")
    torch._dynamo.reset()
    for n_envs in range(1, 6):
        plan = BeamPlanner(model, tokenizer, config).plan(contexts([2] * n_envs, seed=n_envs))
        assert plan.actions.shape == (n_envs, 2, 2)


@pytest.mark.parametrize("decoding", ["static", pytest.param("compiled", marks=pytest.mark.slow)])
def test_planning_for_one_environment_between_several_reuses_each_counts_buffers(decoding) -> None:
    from torch._dynamo.utils import counters

    model, tokenizer = network(LAYOUT)
    config = PlannerConfig(beam_width=3, n_expand=2, horizon=3, max_context_transitions=2, seed=1)
    torch._dynamo.reset()
    counters.clear()
    planner = BeamPlanner(model, tokenizer, PlannerConfig(**{**vars(config), "decoding": decoding}))
    reference = BeamPlanner(model, tokenizer, config)
    caches = {}
    for round_ in range(2):
        for n_envs in (2, 1):
            ctx = contexts([3] * n_envs, seed=n_envs)
            planner.seed(round_ * 10 + n_envs)
            reference.seed(round_ * 10 + n_envs)
            assert_same_plans([reference.plan(ctx)], [planner.plan(ctx)])
            cache = planner.decoder.cache
            assert caches.setdefault(n_envs, cache) is cache  # made once per environment count, then reused
    if decoding == "compiled":
        graphs = counters["stats"]["unique_graphs"]
        assert graphs <= 4, f"the step compiled {graphs} times (once per row count and environment count expected)"
