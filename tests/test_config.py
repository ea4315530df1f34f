"""Configuration dataclasses: defaults, validation (values and types), presets, JSON round trips."""

from __future__ import annotations

import json

import pytest

from tt_agents.config import (
    AgentConfig,
    DataConfig,
    ModelConfig,
    PlannerConfig,
    TokenizerConfig,
    TrainConfig,
    cpu_preset,
    paper_preset,
)

CONFIG_CLASSES = (TokenizerConfig, DataConfig, ModelConfig, TrainConfig, PlannerConfig)


def test_defaults_are_the_papers() -> None:
    config = paper_preset()
    assert (config.tokenizer.n_bins, config.model.n_layer, config.model.n_head, config.model.n_embd) == (100, 4, 4, 128)
    assert (config.model.dropout, config.model.sequence_length, config.model.action_weight) == (0.1, 10, 5.0)
    assert (config.planner.beam_width, config.planner.n_expand, config.planner.horizon) == (128, 2, 15)
    assert (config.planner.max_context_transitions, config.planner.k_obs, config.planner.cdf_act) == (5, 1, 0.4)
    assert config.train.batch_size == 256 and config.planner.discount == 0.99
    assert paper_preset("halfcheetah-medium").planner.horizon == 5


def test_cpu_preset_trains_without_attention_dropout() -> None:
    config = cpu_preset()
    assert config.model.attention_dropout == 0.0 and config.model.dropout == 0.1


def test_cpu_preset_draws_actions_around_the_mean_and_the_paper_samples_its_bins() -> None:
    assert cpu_preset().planner.action_spread == 0.5
    assert paper_preset().planner.action_spread is None and PlannerConfig().action_spread is None


def test_cpu_preset_bins_uniformly_and_the_paper_preset_by_quantile() -> None:
    assert cpu_preset().tokenizer.strategy == "uniform"
    assert paper_preset().tokenizer.strategy == "quantile" == paper_preset("walker2d-medium").tokenizer.strategy


@pytest.mark.parametrize("cls", CONFIG_CLASSES)
def test_every_field_has_a_docstring(cls) -> None:
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    documented = {
        stmt.target.id
        for stmt, after in zip(body, body[1:], strict=False)
        if isinstance(stmt, ast.AnnAssign) and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
    }
    fields = {stmt.target.id for stmt in body if isinstance(stmt, ast.AnnAssign)}
    assert fields - documented == set()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: TokenizerConfig(n_bins=1), "n_bins"),
        (lambda: TokenizerConfig(strategy="log"), "strategy"),
        (lambda: DataConfig(discount=0.0), "discount"),
        (lambda: ModelConfig(n_embd=30, n_head=4), "divisible"),
        (lambda: ModelConfig(dropout=1.0), "dropout"),
        (lambda: TrainConfig(n_steps=0), "n_steps"),
        (lambda: TrainConfig(n_epochs=0.0), "n_epochs"),
        (lambda: TrainConfig(learning_rate=-1.0), "learning_rate"),
        (lambda: TrainConfig(learning_rate=float("inf")), "TrainConfig.learning_rate"),
        (lambda: TrainConfig(batch_size=0), "TrainConfig.batch_size must be >= 1, got 0"),
        (lambda: DataConfig(termination_penalty=float("nan")), "DataConfig.termination_penalty"),
        (lambda: PlannerConfig(mode="greedy"), "mode"),
        (lambda: PlannerConfig(beam_width=0), "beam_width"),
        (lambda: PlannerConfig(discount=float("nan")), "PlannerConfig.discount"),
        (lambda: PlannerConfig(discount=-1.0), "PlannerConfig.discount"),
        (lambda: PlannerConfig(discount=5.0), "PlannerConfig.discount"),
        (lambda: PlannerConfig(cdf_act=1.5), "PlannerConfig.cdf_act"),
        (lambda: PlannerConfig(cdf_act=0.0), "PlannerConfig.cdf_act"),
        (lambda: PlannerConfig(cdf_obs=-0.1), "PlannerConfig.cdf_obs"),
        (lambda: PlannerConfig(k_obs=0), "PlannerConfig.k_obs"),
        (lambda: PlannerConfig(k_act=0), "PlannerConfig.k_act"),
        (lambda: PlannerConfig(k_reward=0), "PlannerConfig.k_reward"),
        (lambda: PlannerConfig(max_context_transitions=-1), "PlannerConfig.max_context_transitions"),
        (lambda: ModelConfig(n_layer=0), "ModelConfig.n_layer"),
        (lambda: ModelConfig(n_head=0), "ModelConfig.n_head"),
        (lambda: ModelConfig(n_embd=0), "ModelConfig.n_embd"),
        (lambda: ModelConfig(action_weight=-1.0), "ModelConfig.action_weight"),
        (lambda: ModelConfig(place_frequencies=-1), "ModelConfig.place_frequencies"),
        (lambda: TrainConfig(min_lr_ratio=-0.5), "TrainConfig.min_lr_ratio"),
        (lambda: TrainConfig(grad_clip=-1.0), "TrainConfig.grad_clip"),
        (lambda: TrainConfig(checkpoint_every=-1), "TrainConfig.checkpoint_every"),
        (lambda: TrainConfig(eval_every=-1), "TrainConfig.eval_every"),
        (lambda: TrainConfig(warmup_steps=-1), "TrainConfig.warmup_steps"),
        (lambda: TrainConfig(eval_batches=0), "TrainConfig.eval_batches"),
        (lambda: TrainConfig(weight_decay=-1.0), "TrainConfig.weight_decay"),
        (lambda: TrainConfig(betas=(1.5, 0.9)), "TrainConfig.betas"),
        (lambda: TrainConfig(compile="always"), "TrainConfig.compile"),
    ],
)
def test_bad_values_are_named(make, match) -> None:
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: TokenizerConfig(n_bins="100"), "TokenizerConfig.n_bins"),
        (lambda: TrainConfig(batch_size=64.0), "TrainConfig.batch_size"),
        (lambda: TrainConfig(amp="yes"), "TrainConfig.amp"),
        (lambda: TrainConfig(betas=(0.9,)), "TrainConfig.betas"),
        (lambda: PlannerConfig(beam_width=True), "PlannerConfig.beam_width"),
        (lambda: PlannerConfig(k_obs=1.5), "PlannerConfig.k_obs"),
    ],
)
def test_wrong_types_are_named(make, match) -> None:
    with pytest.raises(TypeError, match=match):
        make()


def test_ints_are_accepted_where_floats_are_expected() -> None:
    assert TrainConfig(learning_rate=1, n_epochs=2).n_epochs == 2
    assert PlannerConfig(seed=None, k_act=None).seed is None


def test_round_trip_through_json() -> None:
    config = cpu_preset()
    again = AgentConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and isinstance(again.train.betas, tuple)


def test_unknown_fields_and_sections_are_refused() -> None:
    data = cpu_preset().to_dict()
    data["train"]["n_stepz"] = 3
    with pytest.raises(ValueError, match="n_stepz"):
        AgentConfig.from_dict(data)
    with pytest.raises(ValueError, match="section.*known sections are .*'planner'"):
        AgentConfig.from_dict({"optimizer": {}})
    with pytest.raises(TypeError, match="ModelConfig: settings must be a mapping"):
        AgentConfig.from_dict({"model": 3})
