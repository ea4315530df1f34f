"""Long-horizon prediction (the paper's Figure 3): how likely the real future states are under each model's
sampled rollouts, per timestep, on held-out episodes.

What it does
    Holds out every ``--holdout-every``-th episode of ``--dataset`` (long enough for the horizon), trains on the
    rest: the Trajectory Transformer with quantile bins (``tt-quantile``), with uniform bins (``tt-uniform``), the
    Markovian ablation (``tt-markov``: the same network with a two-transition window, so every transition sees
    only the one before it) at the cpu preset, and a PETS-style ensemble of single-step Gaussian models
    (``ensemble``). From ``--starts`` held-out starting points it samples ``--samples`` rollouts of ``--horizon``
    steps under the recorded actions and scores the real states with
    :func:`tt_agents.analysis.state_log_likelihood` (binned marginals, each bin a uniform density). The ensemble's
    samples and the Markovian model are scored on the quantile model's bins, next to the discrete oracle of those
    bins (the best any model with them can score); ``tt-uniform`` is scored on its own bins (its oracle is printed).
    ``--partially-observed state`` is the paper's partially observed variant (Figure 3, right): every episode's
    observations have each dimension of every state masked out (set to 0) with probability 0.5
    (:func:`tt_agents.analysis.partially_observed`; ``episode`` masks the same dimensions for a whole episode),
    and the models are trained on, and scored against, what that environment shows.

How to run
    python benchmarks/prediction_error.py --dataset tt-agents/hopper/medium-v0 --workdir runs/prediction
    python benchmarks/prediction_error.py --tt-steps 500 --horizon 30 --starts 3 --samples 50   # a quick look
    python benchmarks/prediction_error.py --partially-observed state      # Figure 3, right

Trained models are kept in ``--workdir`` (rerunning reuses them); results go to ``--out`` as
``prediction_error.md``, ``prediction_error.csv`` and ``prediction_error.png`` (``prediction_error_partial_state.*``
for the partially observed variant, whose models live in ``--workdir``/``partial_state``).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from reports import command_line, machine, table_lines, write_csv, write_markdown

from tt_agents import TTAgent, cpu_preset
from tt_agents.analysis import oracle_log_likelihood, partially_observed, sample_rollouts, state_log_likelihood
from tt_agents.baselines import GaussianEnsemble
from tt_agents.data_loading import Episode, load_episodes, load_minari_dataset

TT_VARIANTS = {
    "tt-quantile": {"tokenizer": {"strategy": "quantile"}},
    "tt-uniform": {"tokenizer": {"strategy": "uniform"}},
    "tt-markov": {"model": {"sequence_length": 2}},
}


def split(episodes: list[Episode], every: int, horizon: int) -> tuple[list[Episode], list[Episode]]:
    """(training episodes, held-out episodes): every ``every``-th episode longer than ``horizon`` is held out."""
    held = {i for i in range(0, len(episodes), every) if len(episodes[i]) > horizon}
    return [e for i, e in enumerate(episodes) if i not in held], [episodes[i] for i in sorted(held)]


def train_tt(name: str, train: list[Episode], space_source, args: argparse.Namespace) -> TTAgent:
    folder = Path(args.workdir) / name
    if (folder / "agent" / "model.safetensors").is_file():
        return TTAgent.from_pretrained(folder / "agent", device=args.device)
    config = cpu_preset()
    config.model = replace(config.model, ordinal_embedding=False)  # results/prediction_error was measured so
    changes = TT_VARIANTS[name]
    config.tokenizer = replace(config.tokenizer, **changes.get("tokenizer", {}))
    config.model = replace(config.model, **changes.get("model", {}))
    agent = TTAgent(space_source.observation_space, space_source.action_space, config=config, device=args.device)
    agent.fit(train, args.tt_steps, checkpoint_dir=folder / "train", log_dir=folder / "logs", seed=args.seed)
    agent.save_pretrained(folder / "agent")
    return agent


def starts(held_out: list[Episode], n: int, horizon: int, seed: int) -> list[tuple[Episode, int]]:
    rng = np.random.default_rng(seed)
    picks = []
    for i in range(n):
        episode = held_out[i % len(held_out)]
        picks.append((episode, int(rng.integers(0, len(episode) - horizon))))
    return picks


def score_tt(agent: TTAgent, picks, reference_agent: TTAgent, args: argparse.Namespace) -> np.ndarray:
    """(starts, H) log-likelihoods of the real states under the agent's rollouts, on ``reference_agent``'s bins."""
    columns, rows = agent.layout.observation_slice, []
    for episode, start in picks:
        rollouts = sample_rollouts(agent, episode, start, args.horizon, args.samples, seed=args.seed)
        reference = episode.observations[start + 1 : start + 1 + args.horizon]
        tokens = reference_agent.tokenizer.encode(rollouts.observations[:, 1:].astype(np.float64), columns=columns)
        rows.append(state_log_likelihood(tokens, reference, reference_agent.tokenizer, columns))
    return np.array(rows)


def score_ensemble(ensemble: GaussianEnsemble, picks, reference_agent: TTAgent, args: argparse.Namespace) -> np.ndarray:
    columns, rows = reference_agent.layout.observation_slice, []
    for episode, start in picks:
        actions = episode.actions[start : start + args.horizon]
        states = ensemble.sample_rollouts(episode.observations[start], actions, args.samples, seed=args.seed)
        reference = episode.observations[start + 1 : start + 1 + args.horizon]
        tokens = reference_agent.tokenizer.encode(states[:, 1:].astype(np.float64), columns=columns)
        rows.append(state_log_likelihood(tokens, reference, reference_agent.tokenizer, columns))
    return np.array(rows)


def plot(curves: dict[str, np.ndarray], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in curves.items():
        style = {"ls": "--", "color": "k"} if name.startswith("oracle") else {}
        ax.plot(np.arange(1, len(values) + 1), values, label=name, **style)
    ax.set(xlabel="timestep", ylabel="log-likelihood of the real state", title="long-horizon prediction")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="tt-agents/hopper/medium-v0")
    p.add_argument("--workdir", default="runs/prediction")
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument(
        "--tt-steps", type=int, default=cpu_preset().train.n_steps, help="training steps of every TT (the cpu preset's)"
    )
    p.add_argument("--ensemble-steps", type=int, default=5000)
    p.add_argument("--horizon", type=int, default=100)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--starts", type=int, default=10)
    p.add_argument("--holdout-every", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--partially-observed",
        choices=("state", "episode"),
        help="mask each observation dimension with probability 0.5, anew for every state (the paper) or per episode",
    )
    args = p.parse_args(argv)
    if args.partially_observed:
        args.workdir = str(Path(args.workdir) / f"partial_{args.partially_observed}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    dataset = load_minari_dataset(args.dataset)
    episodes = load_episodes(dataset)
    if args.partially_observed:
        episodes = partially_observed(episodes, 0.5, per=args.partially_observed, seed=args.seed)
    train, held_out = split(episodes, args.holdout_every, args.horizon)
    if not held_out:
        raise SystemExit(f"no episode of {args.dataset} is longer than the horizon {args.horizon}")
    picks = starts(held_out, args.starts, args.horizon, args.seed)
    timing: dict[str, float] = {}
    agents = {}
    for name in TT_VARIANTS:
        begin = time.perf_counter()
        agents[name] = train_tt(name, train, dataset, args)
        timing[name] = time.perf_counter() - begin
    quantile = agents["tt-quantile"]
    O, A = quantile.layout.observation_dim, quantile.layout.action_dim
    begin = time.perf_counter()
    ensemble = GaussianEnsemble(O, A, seed=args.seed)
    ensemble.fit(train, n_steps=args.ensemble_steps)
    timing["ensemble"] = time.perf_counter() - begin
    scores = {
        "tt-quantile": score_tt(quantile, picks, quantile, args),
        "tt-markov": score_tt(agents["tt-markov"], picks, quantile, args),
        "ensemble": score_ensemble(ensemble, picks, quantile, args),
        "tt-uniform (own bins)": score_tt(agents["tt-uniform"], picks, agents["tt-uniform"], args),
    }
    columns = quantile.layout.observation_slice
    oracle = np.array(
        [
            oracle_log_likelihood(e.observations[s + 1 : s + 1 + args.horizon], quantile.tokenizer, columns)
            for e, s in picks
        ]
    )
    uniform_oracle = np.array(
        [
            oracle_log_likelihood(e.observations[s + 1 : s + 1 + args.horizon], agents["tt-uniform"].tokenizer, columns)
            for e, s in picks
        ]
    )
    curves = {name: values.mean(0) for name, values in scores.items()} | {"oracle (quantile bins)": oracle.mean(0)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"prediction_error_partial_{args.partially_observed}" if args.partially_observed else "prediction_error"
    plot(curves, out / f"{stem}.png")
    marks = [h for h in (1, 10, 25, 50, 100) if h <= args.horizon]
    rows = [[name, *(f"{values[h - 1]:.1f}" for h in marks)] for name, values in curves.items()]
    rows.append(["oracle (uniform bins)", *(f"{uniform_oracle.mean(0)[h - 1]:.1f}" for h in marks)])
    lines = [
        "# Long-horizon prediction: log-likelihood of the real states under sampled rollouts",
        "",
        *(
            [
                f"Partially observed: each observation dimension masked (0) with probability 0.5, a new mask per "
                f"{args.partially_observed}; trained on and scored against the masked observations.",
                "",
            ]
            if args.partially_observed
            else []
        ),
        f"`{command_line()}` on {machine()}: {args.dataset}, {len(train)} training and {len(held_out)} held-out "
        f"episodes, {args.starts} starts, {args.samples} rollouts of {args.horizon} steps under the recorded "
        f"actions; TT at the cpu preset for {args.tt_steps} steps, the ensemble (5 x 4x200) for "
        f"{args.ensemble_steps} steps. Training time (s): "
        + ", ".join(f"{k} {v:.0f}" for k, v in timing.items())
        + ".",
        "",
        *table_lines(["model", *(f"t={h}" for h in marks)], rows),
        "",
        f"![curves]({stem}.png)",
    ]
    write_markdown(out / f"{stem}.md", lines)
    write_csv(
        out / f"{stem}.csv",
        ["model", "timestep", "log_likelihood"],
        (
            {"model": n, "timestep": t + 1, "log_likelihood": float(v[t])}
            for n, v in curves.items()
            for t in range(len(v))
        ),
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
