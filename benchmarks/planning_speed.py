"""Planning speed: the cached :class:`~tt_agents.planner.BeamPlanner` against an uncached beam search.

What it measures
    Milliseconds per action (one ``plan`` call per action; median over ``--repeats`` calls after one warm-up
    call) on a hopper-sized layout (11 observation and 3 action dimensions), a paper-sized Trajectory GPT
    (``ModelConfig()``: 4 layers, 4 heads, 128 dims, 10 transitions) with seeded random weights, a
    ``Tokenizer(100)`` fitted on random data, and a context of 5 past transitions plus the current observation.

    Two planner settings:

    * ``paper``: ``PlannerConfig()`` (beam 128, n_expand 2, horizon 15, 5 context transitions);
    * ``small``: ``PlannerConfig(beam_width=32, horizon=5)``.

    The planners:

    * ``cached``: ``BeamPlanner(model, tokenizer, config).plan(context)`` (KV cache, shared context rows);
    * ``static`` and ``compiled`` (with ``--decodings``): the same planner with ``PlannerConfig.decoding``
      ``"static"`` (buffers allocated once, every token the same shapes) or ``"compiled"`` (that step compiled
      by ``torch.compile``, on CUDA replayed as a CUDA graph); the compile time is reported apart (the first
      call) and the timed calls come after it. Their work is the cached planner's (the same search), except
      that a slid window is recomputed for every beam, so their work columns are left empty;
    * ``uncached``: :class:`uncached_planner.UncachedBeamPlanner`, a re-implementation of the authors' released
      ``beam_plan`` (jannerm/trajectory-transformer, ``trajectory/search/core.py`` and ``sampling.py``): every
      token re-runs ``model(x)`` on the whole cropped sequence. It uses the same sampling function
      (:func:`tt_agents.sampling.sample_tokens`) and ``Tokenizer.expectation``, so the cache is the only
      difference that matters for speed.

    For each it also counts the token evaluations per action (token positions pushed through the network)
    and the attention keys scored, estimates the FLOPs from the model's shape (see :func:`flops`), and
    compares the achieved GFLOP/s with a float32 matmul peak measured in the same run.

How to run
    python benchmarks/planning_speed.py                  # full run
    python benchmarks/planning_speed.py --quick          # skips the uncached paper config (the slowest)
    python benchmarks/planning_speed.py --repeats 5 --threads 2 --device auto
    python benchmarks/planning_speed.py --quick --profile   # plus torch.profiler's top ops (cached paper)
    python benchmarks/planning_speed.py --quick --envs 1 5 15   # plus several environments planned together
    python benchmarks/planning_speed.py --quick --decodings cached static compiled   # every decoder

Targets (printed, never asserted; the best decoder counts): on a CPU, paper config <= 0.8 s per action and
>= 50x faster than uncached, small config <= 50 ms per action; on CUDA, paper config <= 30 ms per action and
15 environments planned together <= 100 ms per call.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from timing import environment_table, load_average, matmul_peak, time_calls
from torch import nn
from uncached_planner import Counts, UncachedBeamPlanner, context_tokens

from tt_agents.config import ModelConfig, PlannerConfig
from tt_agents.kv_cache import KVCache
from tt_agents.layout import TransitionLayout
from tt_agents.model import TrajectoryGPT
from tt_agents.planner import BeamPlanner, PlanningContext
from tt_agents.tokenizer import Tokenizer

N_BINS = 100
N_CONTEXT = 5  # past transitions in the planning context
TARGET_PAPER_MS = {"cpu": 800.0, "cuda": 30.0}
TARGET_PAPER_SPEEDUP = 50.0
TARGET_SMALL_MS = 50.0
TARGET_15_ENVS_MS = 100.0
CONFIGS = {"small": PlannerConfig(beam_width=32, horizon=5), "paper": PlannerConfig()}


# ---- counting the cached planner's work -------------------------------------------------------------


@contextmanager
def count_decode(model: TrajectoryGPT, counts: Counts) -> Iterator[None]:
    """Count the work of the cached planner by temporarily wrapping ``model._decode`` (used by ``prefill`` and
    ``decode``, including when the window slides and is recomputed).

    Every new query scores the keys that :meth:`KVCache.attention_biases` gives each segment: the window's
    ``cache.length + n`` keys, plus masked unwritten ones where a segment is read to its capacity (masked keys
    get a -inf bias after the scores are computed), so that is its attended length.
    """
    original = model._decode

    def wrapper(cache: KVCache, tokens: torch.Tensor) -> torch.Tensor:
        rows, n = tokens.shape
        counts.add(rows, n, sum(bias.shape[-1] for bias in cache.attention_biases(n)))
        return original(cache, tokens)

    model._decode = wrapper
    try:
        yield
    finally:
        del model._decode  # back to the class method


# ---- setup -------------------------------------------------------------------------------------------


def build(seed: int, device: torch.device) -> tuple[TrajectoryGPT, Tokenizer, PlanningContext]:
    """Random paper-sized model, a tokenizer fitted on random data, and a random hopper-sized context."""
    layout = TransitionLayout(observation_dim=11, action_dim=3)
    rng = np.random.default_rng(seed)
    tokenizer = Tokenizer(N_BINS).fit(rng.normal(size=(10_000, layout.n_columns)))
    torch.manual_seed(seed)
    model = TrajectoryGPT(layout, N_BINS, ModelConfig()).to(device).eval()

    low, high = tokenizer.edges[:, 0], tokenizer.edges[:, -1]  # (D,) the fitted range of each column

    def uniform(columns: slice, rows: int) -> np.ndarray:
        return rng.uniform(low[columns], high[columns], size=(rows, len(low[columns])))

    context = PlanningContext(
        observations=[uniform(layout.observation_slice, N_CONTEXT + 1)],
        actions=[uniform(layout.action_slice, N_CONTEXT)],
        rewards=[uniform(slice(layout.reward_index, layout.reward_index + 1), N_CONTEXT)[:, 0]],
    )
    return model, tokenizer, context


# ---- FLOPs and peak ----------------------------------------------------------------------------------


def matmul_params_per_token(model: TrajectoryGPT) -> int:
    """Weights each token position multiplies: every Linear in the blocks (12 * n_embd**2 per layer) plus one
    slot's output head (n_embd * (n_bins + 1))."""
    blocks = sum(m.weight.numel() for m in model.blocks.modules() if isinstance(m, nn.Linear))
    return blocks + model.head[0].numel()


def flops(model: TrajectoryGPT, counts: Counts) -> float:
    """FLOPs of the counted work, analytically:

        FLOPs = 2 * P * token_evals + 2 * 2 * n_layer * n_embd * key_evals

    with P = :func:`matmul_params_per_token` (a multiply-add per weight) and key_evals the attention keys
    scored summed over the evaluated token positions (Q K^T and probs @ V: 2 FLOPs per key and channel each,
    over n_embd = n_head * head_dim channels, in every layer). Embeddings, layer norms, softmax, GELU,
    sampling and the cache's copies are not counted.
    """
    c = model.config
    return 2.0 * matmul_params_per_token(model) * counts.token_evals + 4.0 * c.n_layer * c.n_embd * counts.key_evals


# ---- timing ------------------------------------------------------------------------------------------


@dataclass
class Result:
    """The timed calls and counted work of one planner in one setting (or that it was skipped)."""

    config: str
    planner: str
    times_ms: list[float] = field(default_factory=list)
    counts: Counts | None = None
    skipped: bool = False
    first_call_ms: float | None = None

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms)


def profile_cached(planner: BeamPlanner, context: PlanningContext, console: Console, rows: int = 20) -> None:
    """torch.profiler's top ops (by self CPU time) for one cached planning call."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if planner.device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        planner.plan(context)
    console.print("\n[bold]torch.profiler, cached paper config, one call[/bold]")
    console.print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


# ---- main --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="skip the uncached paper config (the slowest by far)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per measurement (default 3)")
    p.add_argument(
        "--uncached-paper-repeats",
        type=int,
        default=1,
        help="timed calls of the slow uncached paper config (default 1, no separate warm-up)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--device", default="cpu", help='"cpu", "cuda", "cuda:N" or "auto" (cuda when available)')
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, tokenizer data and context")
    p.add_argument("--profile", action="store_true", help="print torch.profiler's top ops for the cached paper config")
    p.add_argument(
        "--envs", type=int, nargs="*", default=[], help="also time N environments planned together, e.g. --envs 1 5 15"
    )
    p.add_argument(
        "--decodings",
        nargs="+",
        default=["cached", "static"],
        choices=["cached", "static", "compiled"],
        help=(
            "PlannerConfig.decoding values to time (default: cached static; compiled compiles first); the cached "
            "planner is timed in any case, as the reference, and --envs times the listed decodings only"
        ),
    )
    args = p.parse_args(argv)
    if args.repeats < 1 or args.uncached_paper_repeats < 1:
        p.error("--repeats and --uncached-paper-repeats must be >= 1")
    return args


def measure(
    model: TrajectoryGPT,
    tokenizer: Tokenizer,
    context: PlanningContext,
    args: argparse.Namespace,
    device: torch.device,
    console: Console,
) -> dict[tuple[str, str], Result]:
    """Time (and count the work of) the cached and the uncached planner in the ``small`` and ``paper`` settings."""
    tokens = context_tokens(context, tokenizer, model.layout).to(device)
    reference, _ = BeamPlanner(model, tokenizer, PlannerConfig()).context_tokens(context)
    if not torch.equal(tokens, reference):
        console.print("[red]warning: the uncached context tokens differ from BeamPlanner.context_tokens[/red]")
    results: dict[tuple[str, str], Result] = {}
    for name, config in CONFIGS.items():  # small first: it also warms up both code paths
        cached = BeamPlanner(model, tokenizer, config)
        result = Result(name, "cached", counts=Counts())
        with count_decode(model, result.counts):  # the warm-up call is the counted one
            cached.plan(context)
        console.print(f"timing {name} / cached ...")
        result.times_ms = time_calls(lambda p=cached: p.plan(context), args.repeats, device, warmup=False)
        results[name, "cached"] = result
        if args.profile and name == "paper":
            profile_cached(cached, context, console)
        for decoding in [d for d in args.decodings if d != "cached"]:
            planner = BeamPlanner(model, tokenizer, replace(config, decoding=decoding))
            console.print(f"timing {name} / {decoding} (first call, then {args.repeats}) ...")
            first = time_calls(lambda p=planner: p.plan(context), 1, device, warmup=False)[0]
            times = time_calls(lambda p=planner: p.plan(context), args.repeats, device, warmup=False)
            results[name, decoding] = Result(name, decoding, times, first_call_ms=first)

        uncached = UncachedBeamPlanner(model, tokenizer, config)
        if name == "paper" and args.quick:
            results[name, "uncached"] = Result(name, "uncached", skipped=True)
            continue
        slow = name == "paper"
        repeats = args.uncached_paper_repeats if slow else args.repeats
        console.print(f"timing {name} / uncached ({repeats} call(s){'' if slow else ' after a warm-up'}) ...")
        times = time_calls(lambda p=uncached: p.plan(tokens), repeats, device, warmup=not slow)
        results[name, "uncached"] = Result(name, "uncached", times, counts=uncached.counts)
    return results


def environments_table(
    model: TrajectoryGPT, tokenizer: Tokenizer, context: PlanningContext, args: argparse.Namespace, device: torch.device
) -> tuple[Table, dict[tuple[str, str, int], float]]:
    """Every decoder with 1, 5, 15 ... environments planned in one call: ms per call and per environment."""
    table = Table(title="Environments planned together")
    for column in ("config", "decoding", "environments", "ms per call", "ms per environment"):
        table.add_column(column, justify="right")
    times: dict[tuple[str, str, int], float] = {}
    for name, config in CONFIGS.items():
        for decoding in args.decodings:
            planner = BeamPlanner(model, tokenizer, replace(config, decoding=decoding))
            for n_envs in args.envs:
                batch = PlanningContext(
                    [*context.observations] * n_envs, [*context.actions] * n_envs, [*context.rewards] * n_envs
                )
                ms = statistics.median(time_calls(lambda b=batch, p=planner: p.plan(b), args.repeats, device))
                times[name, decoding, n_envs] = ms
                table.add_row(name, decoding, str(n_envs), f"{ms:.0f}", f"{ms / n_envs:.0f}")
    return table, times


def results_table(
    results: dict[tuple[str, str], Result], model: TrajectoryGPT, peak: float, device: torch.device
) -> Table:
    """Milliseconds per action, speed-up, work counted and FLOP rate of every measurement."""
    table = Table(title=f"Planning speed (one plan call per action; median of timed calls; device {device})")
    for column in ("config", "planner", "calls", "ms/action", "min ms", "first call ms", "speed-up"):
        table.add_column(column, justify="left" if column in ("config", "planner") else "right")
    for column in ("token evals/action", "keys/query", "model calls", "GFLOP/action", "GFLOP/s", "% of peak"):
        table.add_column(column, justify="right")
    for (name, planner), r in results.items():
        if r.skipped:
            table.add_row(name, planner, "skipped (--quick)", *[""] * 10)
            continue
        other = results[name, "uncached"]
        speedup = "" if planner == "uncached" else "n/a" if other.skipped else f"{other.median_ms / r.median_ms:.1f}x"
        first = "" if r.first_call_ms is None else f"{r.first_call_ms:,.0f}"
        timing = [str(len(r.times_ms)), f"{r.median_ms:,.1f}", f"{min(r.times_ms):,.1f}", first, speedup]
        if r.counts is None:  # same search as cached; its slides are recomputed for every beam
            table.add_row(name, planner, *timing, *[""] * 6)
            continue
        gflop = flops(model, r.counts) / 1e9
        achieved = gflop / (r.median_ms / 1e3)
        table.add_row(
            name,
            planner,
            *timing,
            f"{r.counts.token_evals:,}",
            f"{r.counts.key_evals / r.counts.token_evals:.1f}",
            f"{r.counts.calls:,}",
            f"{gflop:,.2f}",
            f"{achieved:,.1f}",
            f"{100 * achieved / peak:.1f}%",
        )
    return table


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else "[green]yes[/green]" if ok else "[red]no[/red]"


def targets_table(
    results: dict[tuple[str, str], Result], device: torch.device, env_times: dict[tuple[str, str, int], float]
) -> Table:
    """The targets (printed, never asserted) against the best decoder measured."""
    targets = Table(title="Targets (from the issue; not asserted; the best decoder measured)")
    for column in ("target", "measured", "met"):
        targets.add_column(column)

    def best(config: str) -> Result:
        timed = [r for (name, planner), r in results.items() if name == config and planner != "uncached"]
        return min(timed, key=lambda r: r.median_ms)

    kind = "cuda" if device.type == "cuda" else "cpu"
    paper, small, paper_uncached = best("paper"), best("small"), results["paper", "uncached"]
    paper_target = TARGET_PAPER_MS[kind]
    targets.add_row(
        f"paper config <= {paper_target:g} ms per action ({kind})",
        f"{paper.median_ms:,.1f} ms ({paper.planner})",
        _verdict(paper.median_ms <= paper_target),
    )
    if kind == "cpu":
        if paper_uncached.skipped:
            ratio, measured = None, "skipped (--quick)"
        else:
            ratio = paper_uncached.median_ms / paper.median_ms
            measured = f"{ratio:.1f}x ({paper.planner})"
        ok = None if ratio is None else ratio >= TARGET_PAPER_SPEEDUP
        targets.add_row(f"paper config >= {TARGET_PAPER_SPEEDUP:g}x faster than uncached", measured, _verdict(ok))
        targets.add_row(
            f"small config <= {TARGET_SMALL_MS:g} ms per action",
            f"{small.median_ms:.1f} ms ({small.planner})",
            _verdict(small.median_ms <= TARGET_SMALL_MS),
        )
    else:
        fifteen = {d: ms for (name, d, n), ms in env_times.items() if name == "paper" and n == 15}
        if fifteen:
            decoding, ms = min(fifteen.items(), key=lambda item: item[1])
            measured, ok = f"{ms:,.0f} ms ({decoding})", ms <= TARGET_15_ENVS_MS
        else:
            measured, ok = "not run (--envs 15)", None
        targets.add_row(f"paper config, 15 environments together <= {TARGET_15_ENVS_MS:g} ms", measured, _verdict(ok))
    return targets


def main(argv: list[str] | None = None) -> None:
    """Time both planners in both settings and print the tables and targets."""
    args = parse_args(argv)
    console = Console()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else None
    device = device or torch.device(args.device)
    console.print(environment_table(device))

    model, tokenizer, context = build(args.seed, device)
    peak = matmul_peak(device)
    console.print(
        f"model: {model.config.n_layer} layers, {model.config.n_head} heads, {model.config.n_embd} dims, "
        f"block {model.block_size} tokens; transition {model.layout.transition_dim} tokens; context "
        f"{context_tokens(context, tokenizer, model.layout).shape[1]} tokens; matmul peak (1024x1024 float32, best "
        f"of 20): {peak:.1f} GFLOP/s"
    )
    results = measure(model, tokenizer, context, args, device, console)
    console.print(results_table(results, model, peak, device))
    env_times: dict[tuple[str, str, int], float] = {}
    if args.envs:
        table, env_times = environments_table(model, tokenizer, context, args, device)
        console.print(table)
    console.print(
        "FLOPs = 2 * P * token_evals + 2 * 2 * n_layer * n_embd * key_evals, "
        f"P = {matmul_params_per_token(model):,} matmul weights per token (blocks + one head slot); "
        "keys/query = mean attended length (keys scored, masked ones included)."
    )
    console.print(targets_table(results, device, env_times))
    console.print(
        f"load average (1 min) at the end: {load_average()} (other processes on the machine skew the timings)"
    )


if __name__ == "__main__":
    main()
