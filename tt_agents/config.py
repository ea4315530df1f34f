"""Typed configuration dataclasses, one per stage, with the paper's defaults and per-environment presets.

Defaults follow the paper (Appendix A/E) and the authors' released configuration. ``cpu_preset()`` gives
smaller settings that train and plan on a laptop CPU in minutes; it is named as such wherever it is used.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from ._validation import check_types, dataclass_from_dict, in_unit_interval, require

PlanningMode = Literal["reward", "imitation", "goal", "q"]


@dataclass
class TokenizerConfig:
    """How continuous columns become tokens."""

    n_bins: int = 100
    """Bins per dimension (the paper's vocabulary size V = 100)."""
    strategy: Literal["quantile", "uniform"] = "quantile"
    """``quantile``: each bin holds ~1/N of the training data; ``uniform``: equal-width bins over [min, max]."""

    def __post_init__(self) -> None:
        check_types(self)
        if self.n_bins < 2:
            raise ValueError(f"TokenizerConfig.n_bins must be >= 2, got {self.n_bins}")
        if self.strategy not in ("quantile", "uniform"):
            raise ValueError(f"TokenizerConfig.strategy must be 'quantile' or 'uniform', got {self.strategy!r}")


@dataclass
class DataConfig:
    """How episodes become training targets."""

    discount: float = 0.99
    """Discount of the reward-to-go target V_t = sum_j discount^j r_{t+1+j}."""
    termination_penalty: float | None = -100.0
    """Reward given to a true terminal step (not a time-limit truncation); ``None`` keeps the real reward."""
    validation_fraction: float = 0.05
    """Fraction of episodes held out for the validation loss (split by episode, at least one when possible)."""

    def __post_init__(self) -> None:
        check_types(self)
        if not 0.0 < self.discount <= 1.0:
            raise ValueError(f"DataConfig.discount must be in (0, 1], got {self.discount}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"DataConfig.validation_fraction must be in [0, 1), got {self.validation_fraction}")
        penalty = self.termination_penalty
        if penalty is not None and not math.isfinite(penalty):
            raise ValueError(f"DataConfig.termination_penalty must be a finite reward or None, got {penalty}")


@dataclass
class ModelConfig:
    """The Trajectory GPT (paper Appendix A: 4 layers, 4 heads, 128-dim embeddings, dropout 0.1)."""

    n_layer: int = 4
    """Transformer blocks."""
    n_head: int = 4
    """Attention heads per block; must divide ``n_embd``."""
    n_embd: int = 128
    """Width of the token embeddings and of every block."""
    dropout: float = 0.1
    """Dropout on embeddings, attention weights and residual branches."""
    attention_dropout: float | None = None
    """Dropout on the attention weights alone (``None``: ``dropout``, as in the paper). On a CPU, attention
    dropout makes a training step several times slower (torch's fused attention has no CPU kernel with
    dropout), so :func:`cpu_preset` sets it to 0."""
    sequence_length: int = 10
    """Transitions per training window; the model's block is ``sequence_length * transition_dim - 1`` tokens
    (plus the goal prefix)."""
    action_weight: float = 5.0
    """Cross-entropy weight of action tokens."""
    reward_weight: float = 1.0
    """Cross-entropy weight of reward tokens."""
    value_weight: float = 1.0
    """Cross-entropy weight of reward-to-go tokens."""
    target_smoothing: float = 0.0
    """Standard deviation, in bins, of a Gaussian over the neighbouring bins used as each token's training target
    (the HL-Gauss loss of Farebrother et al., 2024: it teaches the model that nearby bins are nearby values). 0
    trains on the exact bin, as the paper does; the stop token is always an exact target."""
    ordinal_embedding: bool = False
    """Add to each token's embedding a learned per-slot direction scaled by the token's place among its slot's bins
    (``-1`` for the first bin, ``+1`` for the last), so bins next to each other start out as neighbours and a bin
    rarely or never seen in training (a state beyond the data's usual range) is still embedded as "beyond its
    neighbours" rather than as an untrained vector. False: token embeddings alone, as in the paper."""
    place_frequencies: int = 0
    """Embed each bin of a continuous slot as a smooth function of its place instead of by a table row of its
    own: a learned vector per slot plus learned per-slot weights on ``sin`` and ``cos`` of ``k * pi / 2 * place``
    for ``k = 1 .. place_frequencies`` (with ``ordinal_embedding``, its linear direction too). Neighbouring bins
    then share what training taught either, so a bin seldom or never seen in training is read between its
    neighbours (not in the paper). Categorical slots (discrete spaces) and the stop token keep their table rows.
    0: a table row per bin, as in the paper."""
    map_shape: tuple[int, int] | None = None
    """``(height, width)`` of a map of categorical cells (paper Appendix F: MiniGrid maps) whose
    embedding, from a small convolutional network, is added to every token's embedding like the position
    embedding. ``None``: no map. Agents read it from the ``map`` entry of Dict observations."""
    map_classes: int = 16
    """Values a map cell can take (``0 .. map_classes - 1``: MiniGrid's object types fit in 11)."""
    map_per_step: bool = False
    """The maps change through an episode (e.g. an agent-centred view; set by ``fit`` from the data): every
    training window then reads the map of its first step, so a plan starts from the current step alone (no past
    transitions in its context, whatever ``PlannerConfig.max_context_transitions`` says) and reads the current
    map, as the appendix's "function of the current observation image"."""

    def __post_init__(self) -> None:
        check_types(self)
        require(
            self,
            {
                "map_shape": (
                    self.map_shape is None or (len(self.map_shape) == 2 and min(self.map_shape) >= 4),
                    "None or (height, width), each >= 4",
                ),
                "map_classes": (self.map_classes >= 2, ">= 2"),
                "place_frequencies": (self.place_frequencies >= 0, ">= 0 (0: a table row per bin)"),
                "n_layer": (self.n_layer >= 1, ">= 1"),
                "n_head": (self.n_head >= 1, ">= 1"),
                "n_embd": (self.n_embd >= 1, ">= 1"),
                "action_weight": (math.isfinite(self.action_weight) and self.action_weight >= 0, "finite and >= 0"),
                "reward_weight": (math.isfinite(self.reward_weight) and self.reward_weight >= 0, "finite and >= 0"),
                "value_weight": (math.isfinite(self.value_weight) and self.value_weight >= 0, "finite and >= 0"),
                "target_smoothing": (
                    math.isfinite(self.target_smoothing) and self.target_smoothing >= 0,
                    "finite and >= 0 (0: exact targets)",
                ),
            },
        )
        if self.n_embd % self.n_head != 0:
            raise ValueError(f"ModelConfig.n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.sequence_length < 2:
            raise ValueError(f"ModelConfig.sequence_length must be >= 2, got {self.sequence_length}")
        for name in ("dropout", "attention_dropout"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise ValueError(f"ModelConfig.{name} must be in [0, 1), got {value}")


@dataclass
class TrainConfig:
    """Optimisation (AdamW, linear warmup then cosine decay, gradient clipping)."""

    n_steps: int = 20_000
    """Gradient steps of a ``fit`` call (unless ``n_epochs`` is set; at least ``min_epochs`` passes)."""
    n_epochs: float | None = None
    """When set, the budget in passes over the training windows instead: ``fit`` trains for
    ``ceil(n_epochs * training windows / batch_size)`` steps, so the same setting fits datasets of any size."""
    min_epochs: float | None = None
    """When set (and ``n_epochs`` is not), ``n_steps`` is a floor: ``fit`` trains for at least this many passes over
    the training windows, so a step budget sized for small data still trains enough on large data. A step count
    passed to ``fit`` itself is trained exactly."""
    batch_size: int = 256
    """Training windows per gradient step."""
    learning_rate: float = 6e-4
    """Peak learning rate (6e-4 in the authors' released config; the paper's text says 2.5e-4)."""
    min_lr_ratio: float = 0.1
    """The cosine decays to ``learning_rate * min_lr_ratio`` at ``n_steps`` and stays there."""
    warmup_steps: int = 500
    """Steps of linear warmup up to ``learning_rate``."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW's moment coefficients."""
    weight_decay: float = 0.1
    """Applied to weight matrices only (not biases, LayerNorm or embeddings)."""
    grad_clip: float = 1.0
    """Largest global gradient norm; larger gradients are scaled down to it."""
    eval_every: int = 500
    """Steps between validation-loss evaluations (0 disables)."""
    eval_batches: int = 8
    """Validation batches averaged per validation-loss evaluation."""
    checkpoint_every: int = 1000
    """Steps between resumable checkpoints when a checkpoint directory is given (0: only at the end)."""
    amp: bool = True
    """bfloat16 autocast on CUDA (ignored on CPU)."""
    compile: bool | Literal["auto"] = "auto"
    """``torch.compile`` the network for training. ``"auto"``: on CUDA only (on a CPU the compiled step was
    measured slower than the eager one; see ``benchmarks/results/training_speed.md``) and for runs of at least
    ``tt_agents.training_device.AUTO_COMPILE_MIN_STEPS`` steps (shorter ones do not earn back the compile time),
    and where the compiler fails on the first step, a warning and eager training; ``True`` compiles anywhere and
    raises what the compiler raises. It changes speed, not the result beyond floating-point rounding."""
    num_workers: int = 0
    """``torch.utils.data.DataLoader`` worker processes (0: batches are made in the training process)."""
    seed: int = 0
    """Seed of the model's initialisation, the train/validation split and the batch order."""

    def __post_init__(self) -> None:
        check_types(self)
        for name in ("n_epochs", "min_epochs"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"TrainConfig.{name} must be a positive number of passes, got {value}")
        require(
            self,
            {
                "n_steps": (self.n_steps >= 1, ">= 1"),
                "batch_size": (self.batch_size >= 1, ">= 1"),
                "learning_rate": (math.isfinite(self.learning_rate) and self.learning_rate > 0, "finite and > 0"),
                "min_lr_ratio": (0.0 <= self.min_lr_ratio <= 1.0, "in [0, 1]"),
                "warmup_steps": (self.warmup_steps >= 0, ">= 0"),
                "betas": (all(0.0 <= b < 1.0 for b in self.betas), "two numbers in [0, 1)"),
                "weight_decay": (math.isfinite(self.weight_decay) and self.weight_decay >= 0, "finite and >= 0"),
                "grad_clip": (
                    math.isfinite(self.grad_clip) and self.grad_clip >= 0,
                    "finite and >= 0 (0: no clipping)",
                ),
                "eval_every": (self.eval_every >= 0, ">= 0 (0: never)"),
                "eval_batches": (self.eval_batches >= 1, ">= 1"),
                "checkpoint_every": (self.checkpoint_every >= 0, ">= 0 (0: only at the end)"),
                "num_workers": (self.num_workers >= 0, ">= 0"),
            },
        )
        if isinstance(self.compile, str) and self.compile != "auto":
            raise ValueError(f"TrainConfig.compile must be True, False or 'auto', got {self.compile!r}")


@dataclass
class PlannerConfig:
    """Beam-search planning (paper Section 3.2, Appendix E, and the authors' released planner)."""

    mode: PlanningMode = "reward"
    """``reward``: discounted predicted rewards + reward-to-go; ``imitation``: log-likelihood; ``goal``:
    likelihood conditioned on a goal; ``q``: predicted rewards + a Q-function at the leaves."""
    beam_width: int = 128
    """Beams kept per environment after every planned transition."""
    n_expand: int = 2
    """Copies of each beam before sampling actions."""
    horizon: int = 15
    """Planned transitions."""
    max_context_transitions: int = 5
    """Real past transitions kept in the context."""
    k_obs: int | None = 1
    """Observation tokens from the top-k (1 = greedy)."""
    k_act: int | None = None
    """Action tokens from the top-k (``None``: no top-k filter; ``cdf_act`` applies)."""
    cdf_obs: float | None = None
    """Observation tokens sampled from the smallest set holding this much mass (``None``: ``k_obs`` alone)."""
    cdf_act: float | None = 0.4
    """Action tokens sampled from the smallest set of most likely tokens holding this much probability mass. The
    authors' planner writes its filter the other way round: its ``cdf_act=0.6`` drops the least likely tokens
    that together hold under 60% of the mass, i.e. keeps the most likely ones holding over 40%, which is this
    default (the same tokens up to exact ties)."""
    imitation_action: Literal["expected", "most_likely"] = "expected"
    """What ``imitation`` mode acts with. ``expected``: the model's expected action given the context (the mean of
    each action dimension's predicted distribution, given the dimensions before it), from which the likelihood
    search plans the rest of the horizon. ``most_likely``: the first action of the most likely plan (the paper's
    imitation planner). On data from a stochastic policy the most likely tokens are not a typical action (each
    dimension's mode of a broad distribution, often an extreme one), and an agent acting with them falls at once;
    the expected action is what behaviour cloning regresses to."""
    average_contexts: bool = False
    """``imitation`` mode with the expected action only (ignored otherwise). ``False`` (the paper's planner): act with
    the expected action given the whole context. ``True``: act with the mean of the expected actions given the last
    0, 1, ..., ``max_context_transitions`` transitions of the context (lengths the episode has not reached are left
    out); the rest of the plan is the whole context's search, and a categorical action column keeps the whole
    context's choice. Each context length gives a slightly different estimate of the data's mean action, and their
    mean is often a steadier one: on walker2d-medium it raised imitation from 89% to 99% of BC's return on average
    over four cpu-preset trainings (five of eight trainings up, three down by about a point), left hopper-medium
    level, and cost Pendulum-v1 swing-up from 30 expert episodes (``benchmarks/results/locomotion_walker_notes.md``),
    so no preset turns it on. The extra cost is one batched pass of single candidates from the shorter contexts
    beside the search."""
    action_spread: float | None = None
    """How planned actions are drawn. ``None`` (the paper's planner): each action token is sampled from the most
    likely bins (``cdf_act``, ``k_act``). A number: each continuous action dimension is its expected value (given
    the context and the dimensions drawn before it) plus ``action_spread`` times its predicted standard deviation
    times a standard normal draw, kept inside the range the tokenizer was fitted on, and the agent acts with that
    value rather than a bin centre. 0 plans with the expected action alone; around 0.5, the search still compares
    different actions but stays near the mean of what the data did, where a model trained on a noisy (stochastic)
    behaviour policy is most accurate. Categorical action columns are sampled from their bins either way. The
    first action of ``imitation`` mode is its ``imitation_action`` regardless."""
    bin_ranking: Literal["probability", "density"] = "probability"
    """How bins are ranked for greedy decoding, the ``k``/``cdf`` filters and the likelihood of ``imitation`` and
    ``goal`` modes: by ``probability`` (the authors' planner), or by ``density``, probability divided by the bin's
    width (never less than a tenth of a uniform bin's). Quantile bins are wide where data is rare, so ranking by
    probability favours rare values; by density, the most likely bin is the mode of the predicted distribution.
    Uniform bins rank the same either way."""
    anchor_margin: float | None = None
    """``reward`` and ``q`` modes only. ``None`` (the paper's planner): act with the first action of the best
    plan. A number: one candidate per environment starts with the expected action (what imitation mode acts
    with), the best plan that starts with it is kept in the beam at every step, and the planner acts with that
    expected action unless the best plan's score exceeds this plan's by more than ``anchor_margin`` times the
    range of the reward-to-go the tokenizer was fitted on (its value column's highest minus lowest edge), so one
    margin serves rewards of any scale. 0 lets the expected action compete as one more candidate; a large margin
    acts like imitation mode except where the search predicts much more return away from it. In ``q`` mode the
    scores are in the Q-function's units, which match that range only if it was trained on the same rewards."""
    value_quantile: float | None = None
    """``reward`` and ``q`` modes: score plans with this quantile (in (0, 1)) of each predicted reward and
    reward-to-go distribution instead of its mean (``None``, the paper's setting). The authors' planner has the
    same option (its ``percentile``, default ``'mean'``). A low quantile is risk-averse: a plan whose predicted
    future includes a fall or a flip, even as a minority outcome, scores low."""
    k_reward: int | None = 1
    """Reward and reward-to-go tokens (greedy by default; scores use the expectation over bins)."""
    discount: float = 0.99
    """Discount of planned rewards and of the leaf value in ``reward`` and ``q`` modes."""
    seed: int | None = 0
    """Seed of the planner's sampling; ``None`` draws from the global generator."""
    decoding: Literal["cached", "static", "compiled"] = "cached"
    """How the search runs the network (the plans are the same up to floating-point rounding): ``cached``, the
    segmented KV cache whose shapes grow token by token (the reference, fastest on CPUs); ``static``, buffers
    allocated once and every token run with the same shapes; ``compiled``, ``static`` with the one-token step
    compiled by ``torch.compile`` (on CUDA replayed as a CUDA graph), compiled once per search size."""

    def __post_init__(self) -> None:
        check_types(self)
        if self.decoding not in ("cached", "static", "compiled"):
            raise ValueError(f"PlannerConfig.decoding must be 'cached', 'static' or 'compiled', got {self.decoding!r}")
        if self.imitation_action not in ("expected", "most_likely"):
            raise ValueError(
                f"PlannerConfig.imitation_action must be 'expected' or 'most_likely', got {self.imitation_action!r}"
            )
        if self.bin_ranking not in ("probability", "density"):
            raise ValueError(f"PlannerConfig.bin_ranking must be 'probability' or 'density', got {self.bin_ranking!r}")
        if self.mode not in ("reward", "imitation", "goal", "q"):
            raise ValueError(f"PlannerConfig.mode must be reward|imitation|goal|q, got {self.mode!r}")
        require(
            self,
            {
                "beam_width": (self.beam_width >= 1, ">= 1"),
                "n_expand": (self.n_expand >= 1, ">= 1"),
                "horizon": (self.horizon >= 1, ">= 1"),
                "max_context_transitions": (self.max_context_transitions >= 0, ">= 0"),
                "k_obs": (self.k_obs is None or self.k_obs >= 1, ">= 1 or None"),
                "k_act": (self.k_act is None or self.k_act >= 1, ">= 1 or None"),
                "k_reward": (self.k_reward is None or self.k_reward >= 1, ">= 1 or None"),
                "cdf_obs": (in_unit_interval(self.cdf_obs), "in (0, 1] or None"),
                "cdf_act": (in_unit_interval(self.cdf_act), "in (0, 1] or None"),
                "discount": (in_unit_interval(self.discount), "in (0, 1]"),
                "value_quantile": (
                    self.value_quantile is None or 0 < self.value_quantile < 1,
                    "in (0, 1) or None",
                ),
                "action_spread": (
                    self.action_spread is None or 0 <= self.action_spread < float("inf"),
                    "a finite number >= 0 or None",
                ),
                "anchor_margin": (
                    self.anchor_margin is None or 0 <= self.anchor_margin < float("inf"),
                    "a finite number >= 0 or None",
                ),
            },
        )


@dataclass
class AgentConfig:
    """Everything an agent needs, saved as ``config.json`` in a checkpoint."""

    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AgentConfig:
        if not isinstance(d, dict):
            raise TypeError(f"AgentConfig: settings must be a mapping of sections to settings, got {d!r}")
        sections = [f.name for f in fields(cls)]
        unknown = set(d) - set(sections)
        if unknown:
            raise ValueError(f"AgentConfig: unknown section(s) {sorted(unknown)}; known sections are {sections}")
        classes = {
            "tokenizer": TokenizerConfig,
            "data": DataConfig,
            "model": ModelConfig,
            "train": TrainConfig,
            "planner": PlannerConfig,
        }
        return cls(**{k: dataclass_from_dict(classes[k], v) for k, v in d.items()})


def cpu_preset() -> AgentConfig:
    """A reduced configuration that trains in minutes and plans in tens of milliseconds on a CPU.

    Reduced from the paper: uniform bins (the paper's are quantile: see below), 2 layers of 64-dim embeddings, no
    attention dropout (several times faster on a CPU; dropout elsewhere stays 0.1), batch 64, learning rate 1e-3 after
    200 warm-up steps, 4000 steps and at least 5 passes over the data (``min_epochs``: on walker2d-medium, 100k
    transitions, imitation earned half of BC's return after the 2.7 passes of 4000 steps and 92% of it after 5);
    planning with beam 32, horizon 5, actions sampled from the most likely tokens holding 60% of the mass (wider than
    the paper's 40%: every cpu-preset figure of this package was measured so), bins ranked by density
    (``bin_ranking="density"``: the same as the paper's probability ranking with uniform bins; with quantile bins it
    stops the wide bins of rare values from winning), and candidate actions drawn around the expected action
    (``action_spread=0.5``, not in the paper: see below).

    Uniform bins because quantile bins are one bin wide across the rare states a fall passes through, which at this
    model size left imitation below BC on walker2d-medium, where uniform bins matched BC on two seeds
    (``benchmarks/results/locomotion_walker_notes.md``). ``replace(cpu_preset(),
    tokenizer=TokenizerConfig(strategy="quantile"))`` gives the paper's discretization.

    Not in the paper: the ordinal embedding (``ModelConfig.ordinal_embedding``). Uniform bins leave the rare states
    of a concentrated data set (an expert keeping a pole upright) in bins training barely saw; the ordinal
    embedding places each bin along its dimension, so those states are still read in order (on expert CartPole data
    imitation from unseen starts fell early without it and balanced every episode with it:
    ``benchmarks/results/cartpole_expert.md``).

    Not in the paper either: ``action_spread=0.5``. On locomotion data from noisy (SAC) policies the paper's action
    sampling reproduces the policy's noise; drawing each action dimension near its mean raised reward mode there and
    was within the noise, but lower, on a maze. For data whose good actions are rare draws of a wide spread,
    ``replace(config.planner, action_spread=None)`` plans as the paper does (measurements:
    ``benchmarks/results/locomotion_walker_notes.md``).
    """
    return AgentConfig(
        tokenizer=TokenizerConfig(strategy="uniform"),
        model=ModelConfig(n_layer=2, n_embd=64, attention_dropout=0.0, ordinal_embedding=True),
        train=TrainConfig(n_steps=4000, min_epochs=5.0, batch_size=64, learning_rate=1e-3, warmup_steps=200),
        planner=PlannerConfig(beam_width=32, horizon=5, cdf_act=0.6, bin_ranking="density", action_spread=0.5),
    )


_PAPER_PLAN_OVERRIDES: dict[str, dict[str, Any]] = {
    # the authors' config/offline.py: horizon 5 where they say it is safe (halfcheetah, walker2d-medium-expert,
    # ant); hopper-medium also plans only every 5 steps there, which this package does not do (it replans every
    # step)
    "halfcheetah-medium": {"horizon": 5},
    "halfcheetah-medium-replay": {"horizon": 5},
    "halfcheetah-medium-expert": {"horizon": 5},
    "walker2d-medium-expert": {"horizon": 5},
    "ant-medium": {"horizon": 5},
    "ant-medium-replay": {"horizon": 5},
    "ant-medium-expert": {"horizon": 5},
}


def paper_preset(env_dataset: str | None = None) -> AgentConfig:
    """The paper's configuration, with the authors' per-dataset planning overrides.

    ``env_dataset`` is e.g. ``"halfcheetah-medium"``; unknown names give the base configuration.
    """
    config = AgentConfig()
    overrides = _PAPER_PLAN_OVERRIDES.get(env_dataset or "", {})
    config.planner = replace(config.planner, **overrides)
    return config
