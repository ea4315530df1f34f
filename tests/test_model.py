"""TrajectoryGPT: the cached decoder equals the full forward pass; masking and loss weighting."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from helpers import EMBEDDINGS, network_config

from tt_agents.config import ModelConfig
from tt_agents.kv_cache import window_start
from tt_agents.layout import TransitionLayout
from tt_agents.model import TrajectoryGPT

N_BINS = 10


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


def make_model(
    goal_dim: int = 0, sequence_length: int = 4, seed: int = 0, device: str = "cpu", embedding: str = "table"
) -> TrajectoryGPT:
    torch.manual_seed(seed)
    layout = TransitionLayout(observation_dim=3, action_dim=2, goal_dim=goal_dim)
    config = network_config(embedding, n_embd=32, sequence_length=sequence_length)
    model = TrajectoryGPT(layout, N_BINS, config, categorical_slots=(4,) if embedding == "place" else ())
    if config.ordinal_embedding:  # trained directions, not the zeros a new network starts from
        torch.nn.init.normal_(model.ordinal_emb)
    return model.to(device).eval()


class UncachedWindow:
    """Reference decoder: a full forward pass over the window the cache is defined to hold.

    The window starts at the first transition and only moves when it would outgrow the block; it then
    jumps to ``window_start`` of the whole history so that the last ``keep`` transitions remain.
    """

    def __init__(self, model: TrajectoryGPT, keep: int) -> None:
        self.model, self.keep, self.start = model, keep, 0

    def logits(self, goal: torch.Tensor, transitions: torch.Tensor) -> torch.Tensor:
        if goal.shape[1] + transitions.shape[1] - self.start > self.model.block_size:
            self.start = window_start(transitions.shape[1], self.model.layout.transition_dim, self.keep)
        logits, _ = self.model(torch.cat([goal, transitions[:, self.start :]], dim=1))
        return logits[:, -1]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("goal_dim", [0, 2])
@pytest.mark.parametrize("embedding", EMBEDDINGS)
def test_greedy_decoding_with_cache_matches_full_forward_also_when_sliding(
    goal_dim: int, device: str, embedding: str
) -> None:
    model = make_model(goal_dim, device=device, embedding=embedding)
    D = model.layout.transition_dim
    keep = 2
    torch.manual_seed(1)
    goal = torch.randint(0, N_BINS, (3, goal_dim), device=device)
    transitions = torch.randint(0, N_BINS, (3, 2 * D + 3), device=device)  # two transitions, a partial observation
    cache, logits = model.prefill(torch.cat([goal, transitions], dim=1))
    full, _ = model(torch.cat([goal, transitions], dim=1))
    torch.testing.assert_close(logits, full, atol=1e-5, rtol=0)

    last = logits[:, -1]
    slid = False
    window = UncachedWindow(model, keep)
    for _ in range(3 * D):  # three full transitions: goes past the block of 4 transitions
        reference = window.logits(goal, transitions)
        torch.testing.assert_close(last, reference, atol=1e-5, rtol=0)
        assert torch.equal(last[:, :N_BINS].argmax(-1), reference[:, :N_BINS].argmax(-1))
        token = last[:, :N_BINS].argmax(-1, keepdim=True)
        slid |= cache.length + 1 > model.block_size
        last = model.decode(cache, token, keep_transitions=keep)[:, -1]
        transitions = torch.cat([transitions, token], dim=1)
    assert slid, "the test must exercise the sliding window"
    torch.testing.assert_close(last, window.logits(goal, transitions), atol=1e-5, rtol=0)


@pytest.mark.parametrize("padded", [False, True])
def test_sliding_rows_that_share_prefixes_match_full_forward(padded: bool) -> None:
    """Beams with a common ancestor compute their shared window prefix once when the window slides; every
    row must still equal a forward pass over its own window (duplicates, shared first transitions, pads)."""
    model = make_model(sequence_length=5)
    D = model.layout.transition_dim
    torch.manual_seed(4)
    base = torch.randint(0, N_BINS, (1, 4 * D + 2))
    other = torch.randint(0, N_BINS, (1, 4 * D + 2))
    branch = base.clone()
    branch[:, 2 * D + 1 :] = other[:, 2 * D + 1 :]  # shares the first two transitions and a token with base
    history = torch.cat([base, branch, base, other, branch])  # rows 0 and 2 are duplicates
    pads = torch.tensor([0, 0, D, 0, D]) if padded else torch.zeros(5, dtype=torch.long)
    for i in range(5):
        history[i, : int(pads[i])] = 7  # placeholders of the padded rows
    cache, logits = model.prefill(history, pad=pads if padded else None)
    window = UncachedWindow(model, keep=2)
    empty = torch.zeros(5, 0, dtype=torch.long)
    last, slid = logits[:, -1], False
    for _ in range(2 * D):
        token = last[:, :N_BINS].argmax(-1, keepdim=True)
        slid |= cache.length + 1 > model.block_size
        last = model.decode(cache, token, keep_transitions=2)[:, -1]
        history = torch.cat([history, token], dim=1)
        window.logits(empty, history)  # moves window.start exactly as the cache does
        for i in range(5):
            first = window.start + max(0, int(pads[i]) - window.start)
            ref = model(history[i : i + 1, first:])[0][:, -1]
            torch.testing.assert_close(last[i : i + 1], ref, atol=1e-5, rtol=0)
    assert slid, "the test must exercise the sliding window"


def test_decode_without_keep_refuses_to_outgrow_the_block() -> None:
    model = make_model()
    cache, _ = model.prefill(torch.randint(0, N_BINS, (1, model.block_size)))
    with pytest.raises(ValueError, match="block size"):
        model.decode(cache, torch.zeros(1, 1, dtype=torch.long))


def test_forward_rejects_sequences_longer_than_the_block() -> None:
    model = make_model()
    with pytest.raises(ValueError, match="block size"):
        model(torch.zeros(1, model.block_size + 1, dtype=torch.long))


def test_padded_rows_equal_their_unpadded_context() -> None:
    model = make_model(goal_dim=2, sequence_length=5)
    D = model.layout.transition_dim
    torch.manual_seed(3)
    goal = torch.randint(0, N_BINS, (2, 2))
    long_ctx = torch.randint(0, N_BINS, (1, 2 * D + 3))
    short_ctx = torch.randint(0, N_BINS, (1, D + 3))
    padded = torch.cat([torch.full((1, D), 7), short_ctx], dim=1)
    tokens = torch.cat([goal, torch.cat([long_ctx, padded])], dim=1)
    cache, logits = model.prefill(tokens, pad=torch.tensor([0, D]))
    ref_long = model(torch.cat([goal[:1], long_ctx], dim=1))[0][:, -1]
    ref_short = model(torch.cat([goal[1:], short_ctx], dim=1))[0][:, -1]
    torch.testing.assert_close(logits[:, -1], torch.cat([ref_long, ref_short]), atol=1e-5, rtol=0)

    # decoding past the block: each row equals a forward pass over its window without the placeholders
    history = torch.cat([long_ctx, padded])
    pads = torch.tensor([0, D])
    window = UncachedWindow(model, keep=3)
    last = logits[:, -1]
    for _ in range(3 * D):
        token = last[:, :N_BINS].argmax(-1, keepdim=True)
        last = model.decode(cache, token, keep_transitions=3)[:, -1]
        history = torch.cat([history, token], dim=1)
        window.logits(goal, history)  # moves window.start exactly as the cache does
        for i in range(2):
            first = window.start + max(0, int(pads[i]) - window.start)
            ref = model(torch.cat([goal[i : i + 1], history[i : i + 1, first:]], dim=1))[0][:, -1]
            torch.testing.assert_close(last[i : i + 1], ref, atol=1e-5, rtol=0)


def test_reward_to_go_tokens_are_never_attended() -> None:
    model = make_model()
    layout = model.layout
    D = layout.transition_dim
    tokens = torch.randint(0, N_BINS, (1, 2 * D + 4))
    changed = tokens.clone()
    changed[0, layout.value_index] = (tokens[0, layout.value_index] + 3) % N_BINS
    changed[0, D + layout.value_index] = (tokens[0, D + layout.value_index] + 5) % N_BINS
    a, _ = model(tokens)
    b, _ = model(changed)
    # outputs at the value positions themselves see their own embedding; every other output is unchanged
    others = [p for p in range(tokens.shape[1]) if p not in (layout.value_index, D + layout.value_index)]
    torch.testing.assert_close(a[0, others], b[0, others], atol=1e-6, rtol=0)


def test_loss_is_weighted_by_target_slot_and_normalised_by_the_mask() -> None:
    model = make_model()
    layout = model.layout
    D = layout.transition_dim
    tokens = torch.randint(0, N_BINS, (2, 2 * D))
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    logits, loss = model(inputs, targets)
    ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    target_slots = torch.arange(1, 2 * D) % D
    weight = torch.ones(D)
    weight[layout.action_slice] = model.config.action_weight
    expected = (ce * weight[target_slots]).sum() / ce.numel()
    torch.testing.assert_close(loss, expected)

    mask = torch.zeros_like(targets, dtype=torch.float32)
    mask[:, :3] = 1.0
    _, masked_loss = model(inputs, targets, mask)
    expected_masked = (ce * weight[target_slots] * mask).sum() / mask.sum()
    torch.testing.assert_close(masked_loss, expected_masked)


def test_untrained_model_predicts_near_uniform_and_stop_token_is_a_class() -> None:
    model = make_model()
    tokens = torch.randint(0, N_BINS, (4, 12))
    tokens[:, -3:] = model.stop_token
    logits, _ = model(tokens[:, :-1], tokens[:, 1:])
    assert logits.shape == (4, 11, N_BINS + 1), "every bin and the stop token are classes of every position"
    probabilities = logits.softmax(-1)  # (4, 11, N_BINS + 1)
    assert (probabilities - 1 / (N_BINS + 1)).abs().max() < 0.05, "small initial weights: near uniform"
    stop = F.cross_entropy(logits[:, -3:].reshape(-1, N_BINS + 1), tokens[:, -3:].reshape(-1))
    assert abs(stop.item() - math.log(N_BINS + 1)) < 0.1, "the stop token is as likely as any bin at first"


def test_the_ordinal_embedding_places_each_bin_along_its_slots_direction_and_is_off_by_default() -> None:
    assert make_model().ordinal_emb is None and "ordinal_emb" not in make_model().state_dict()
    model = make_model(embedding="ordinal")
    slots = torch.arange(model.n_slots)
    zeros = torch.zeros(model.block_size, model.config.n_embd)[: model.n_slots]

    def embedded(tokens: torch.Tensor) -> torch.Tensor:
        return model._embed(tokens[None], slots, zeros)[0]  # (n_slots, C)

    for token in (0, 4, N_BINS - 1):
        tokens = torch.full((model.n_slots,), token)
        place = (2 * token + 1) / N_BINS - 1  # -0.9 for the first bin, +0.9 for the last
        plain = model.tok_emb(tokens + slots * N_BINS)
        torch.testing.assert_close(embedded(tokens), plain + place * model.ordinal_emb)
    stop = torch.full((model.n_slots,), model.stop_token)
    torch.testing.assert_close(embedded(stop), model.tok_emb.weight[-1].expand(model.n_slots, -1))


def test_embedding_by_place_is_smooth_in_the_bin_and_leaves_categories_and_stop_to_the_table() -> None:
    table = make_model()
    assert table.place_emb is None and "place_emb" not in table.state_dict()
    model = make_model(embedding="place")  # slot 4 (the second action) categorical
    torch.nn.init.zeros_(model.ordinal_emb)  # the place's own part alone
    slots = torch.arange(model.n_slots)
    zeros = torch.zeros(model.n_slots, model.config.n_embd)

    def embedded(tokens: torch.Tensor) -> torch.Tensor:
        return model._embed(tokens[None], slots, zeros)[0]  # (n_slots, C)

    for token in (0, 4, N_BINS - 1):
        tokens = torch.full((model.n_slots,), token)
        angles = ((2 * token + 1) / N_BINS - 1) * torch.arange(1, 4) * math.pi / 2
        features = torch.cat([angles.sin(), angles.cos()])  # (6,)
        expected = model.slot_emb + torch.einsum("f,sfc->sc", features, model.place_emb)
        expected[4] = model.tok_emb(torch.tensor(token + 4 * N_BINS))  # the categorical slot: its table row
        torch.testing.assert_close(embedded(tokens), expected)
    stop = torch.full((model.n_slots,), model.stop_token)
    torch.testing.assert_close(embedded(stop), model.tok_emb.weight[-1].expand(model.n_slots, -1))
    # neighbouring bins start out as neighbours (with a table, any two bins start equally far apart)
    bins = model._embed(torch.arange(N_BINS)[None], torch.zeros(N_BINS, dtype=torch.long), zeros[:1])[0]  # slot 0
    distance = (bins - bins[0]).norm(dim=-1)  # (N_BINS,)
    assert distance[1] < distance[N_BINS // 2] < distance[-1]


def test_attention_dropout_defaults_to_dropout_and_can_be_set_apart() -> None:
    layout = TransitionLayout(3, 1)
    default = TrajectoryGPT(layout, 10, ModelConfig(n_layer=1, n_head=2, n_embd=16, dropout=0.1))
    apart = TrajectoryGPT(layout, 10, ModelConfig(n_layer=1, n_head=2, n_embd=16, dropout=0.1, attention_dropout=0.0))
    assert default.blocks[0].attn.attn_dropout == 0.1 and apart.blocks[0].attn.attn_dropout == 0.0
    assert apart.blocks[0].attn.resid_dropout.p == 0.1
    with pytest.raises(ValueError, match="attention_dropout"):
        ModelConfig(attention_dropout=1.5)


def test_smoothed_targets_are_a_gaussian_over_neighbouring_bins_and_the_stop_token_stays_exact() -> None:
    layout = TransitionLayout(2, 1)
    torch.manual_seed(0)
    exact = TrajectoryGPT(layout, 10, ModelConfig(n_layer=1, n_head=1, n_embd=8, sequence_length=2))
    smooth = TrajectoryGPT(
        layout, 10, ModelConfig(n_layer=1, n_head=1, n_embd=8, sequence_length=2, target_smoothing=1.0)
    )
    smooth.load_state_dict(exact.state_dict())
    logits = torch.randn(1, 3, 11)
    targets = torch.tensor([[4, 10, 0]])  # a bin, the stop token, the first bin
    ce_exact, ce_smooth = exact._cross_entropy(logits, targets), smooth._cross_entropy(logits, targets)
    assert ce_smooth[0, 1] == pytest.approx(ce_exact[0, 1].item())  # the stop token: an exact target
    bins = torch.arange(10.0)
    soft = torch.exp(-0.5 * (bins - 4) ** 2)
    expected = -(soft / soft.sum() * torch.log_softmax(logits[0, 0], -1)[:10]).sum()
    assert ce_smooth[0, 0] == pytest.approx(expected.item(), rel=1e-5)
    nearly_exact = TrajectoryGPT(
        layout, 10, ModelConfig(n_layer=1, n_head=1, n_embd=8, sequence_length=2, target_smoothing=1e-3)
    )
    torch.testing.assert_close(nearly_exact._cross_entropy(logits, targets), ce_exact)


def test_attention_maps_are_causal_distributions_that_skip_reward_to_go_and_match_the_forward_pass() -> None:
    layout = TransitionLayout(2, 1)
    torch.manual_seed(0)
    model = TrajectoryGPT(layout, 10, ModelConfig(n_layer=2, n_head=2, n_embd=8, sequence_length=3)).eval()
    tokens = torch.randint(0, 10, (2, model.block_size))
    maps = model.attention_maps(tokens)  # (L, B, H, T, T)
    T = model.block_size
    assert maps.shape == (2, 2, 2, T, T)
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 2, 2, T))
    assert torch.all(maps.triu(1) == 0), "no query attends to a later key"
    value_columns = model.is_value_position(torch.arange(T))
    assert torch.all(maps[..., value_columns] == 0), "reward-to-go keys are never attended"
    # the maps are those of the forward pass: recomputing the first block's output from them gives its output
    block = model.blocks[0]
    x = model._embed(tokens, model.slots(torch.arange(T)), model.pos_emb[:T])
    _, _, v = block.attn._qkv(block.ln_1(x))
    y = (maps[0] @ v).transpose(1, 2).reshape(2, T, 8)
    torch.testing.assert_close(x + block.attn.c_proj(y), x + block.attn(block.ln_1(x), model.attention_mask(T)))


def make_map_model(goal_dim: int = 0) -> TrajectoryGPT:
    torch.manual_seed(0)
    layout = TransitionLayout(observation_dim=3, action_dim=2, goal_dim=goal_dim)
    config = ModelConfig(n_layer=2, n_head=2, n_embd=32, sequence_length=4, map_shape=(6, 7), map_classes=5)
    return TrajectoryGPT(layout, N_BINS, config).eval()


@pytest.mark.parametrize("goal_dim", [0, 2])
def test_map_context_cache_equals_full_forward_through_beams_and_slides(goal_dim: int) -> None:
    model = make_map_model(goal_dim)
    D = model.layout.transition_dim
    torch.manual_seed(3)
    maps = torch.randint(0, 5, (2, 6, 7))  # two environments, two maps
    context = torch.randint(0, N_BINS, (1, goal_dim + 2 * D + 1)).repeat(2, 1)  # the same tokens for both
    cache, logits = model.prefill(context, maps=maps)
    torch.testing.assert_close(logits, model(context, maps=maps)[0], atol=1e-5, rtol=0)
    assert not torch.allclose(logits[0], logits[1]), "the map changes the logits"
    cache.expand(3, capacity=3 * D)  # three beams per environment, env-major
    row_maps = maps.repeat_interleave(3, dim=0)  # (6, H, W)
    history = context.repeat_interleave(3, dim=0)
    rows = torch.tensor([1, 1, 0, 5, 3, 3])  # reorder and duplicate within each environment
    keep, start, slid = 2, 0, False
    for step in range(3 * D):
        token = torch.randint(0, N_BINS, (6, 1))
        token[3:] = token[:3]  # both environments' beams see the same tokens: only the map tells them apart
        slid |= cache.length + 1 > model.block_size
        last = model.decode(cache, token, keep_transitions=keep)[:, -1]
        history = torch.cat([history, token], dim=1)
        transitions = history[:, goal_dim:]
        if history.shape[1] - start > model.block_size:
            start = window_start(transitions.shape[1], D, keep)
        window = torch.cat([history[:, :goal_dim], transitions[:, start:]], dim=1)
        torch.testing.assert_close(last, model(window, maps=row_maps)[0][:, -1], atol=1e-5, rtol=0)
        if step == D:
            cache.select(rows, extra_capacity=3 * D)
            history, row_maps = history[rows], row_maps[rows]
    assert slid, "the test must exercise the sliding window"


def test_map_inputs_are_checked() -> None:
    model, plain = make_map_model(), make_model()
    tokens = torch.randint(0, N_BINS, (2, 5))
    with pytest.raises(ValueError, match=r"reads a map per row, \(2, 6, 7\); got none"):
        model.prefill(tokens)
    with pytest.raises(ValueError, match=r"got \(2, 7, 6\)"):
        model(tokens, maps=torch.zeros(2, 7, 6, dtype=torch.long))
    with pytest.raises(ValueError, match=r"integers in \[0, 5\)"):
        model.prefill(tokens, maps=torch.full((2, 6, 7), 5))  # checked where planning starts (training: in fit)
    with pytest.raises(ValueError, match="reads no map"):
        plain(tokens, maps=torch.zeros(2, 6, 7, dtype=torch.long))


def test_the_map_context_learns_what_a_cell_of_the_map_says() -> None:
    # The first action token is 1 where one cell of the map holds a door (value 3), else 0; every other token is
    # noise. The network can only learn it through the map encoder, trained as the Trainer trains (AdamW, weight
    # decay on matrices): an encoder whose units die (a ReLU before the projection did, on MiniGrid) stays at chance.
    from tt_agents.config import TrainConfig
    from tt_agents.train import make_optimizer

    model = make_map_model().train()
    generator = torch.Generator().manual_seed(1)
    action_position = model.layout.observation_dim  # the first action token of the first transition

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        maps = torch.randint(0, 3, (n, 6, 7), generator=generator)
        door = torch.rand(n, generator=generator) < 0.5
        maps[door, 2, 4] = 3
        tokens = torch.randint(0, N_BINS, (n, model.layout.transition_dim), generator=generator)
        tokens[:, action_position] = door.long()
        mask = torch.zeros(n, tokens.shape[1] - 1)
        mask[:, action_position - 1] = 1.0
        return tokens[:, :-1], tokens[:, 1:], mask, maps

    optimizer = make_optimizer(model, TrainConfig(learning_rate=3e-3, weight_decay=0.1))
    for _ in range(300):
        tokens, targets, mask, maps = batch(64)
        _, loss = model(tokens, targets, mask, maps=maps)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    tokens, targets, mask, maps = batch(256)
    with torch.no_grad():
        logits, _ = model(tokens, maps=maps)
    predicted = logits[:, action_position - 1, :2].argmax(-1)
    assert (predicted == targets[:, action_position - 1]).float().mean() >= 0.95
