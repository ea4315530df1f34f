"""Predicted and real rollouts side by side, rendered with MuJoCo (paper Figure 2).

Loads a saved agent trained on a MuJoCo locomotion dataset, samples rollouts from one episode's start under the
recorded actions (the model predicts every state; nothing is simulated), and renders the real states above one
sampled rollout, as an image strip and a GIF. It also prints how likely the real states are under the sampled
ones, next to the discrete oracle (the best any model with the same bins can score).

Run (headless machines need MUJOCO_GL=egl, set here unless given)::

    tt-agents make-dataset hopper medium --cpu
    tt-agents train tt-agents/hopper/medium-v0 --env Hopper-v5 --out runs/hopper
    python examples/render_rollouts.py runs/hopper tt-agents/hopper/medium-v0 --out runs/hopper/figures
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before MuJoCo is first imported

from tt_agents import TTAgent  # noqa: E402
from tt_agents.analysis import analyze_episode  # noqa: E402
from tt_agents.data_loading import load_episodes, load_minari_dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a saved agent's folder")
    parser.add_argument("dataset", help="Minari dataset id of a MuJoCo locomotion environment")
    parser.add_argument("--episode", type=int, default=-1)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--horizon", type=int, default=100)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--out", default="figures")
    args = parser.parse_args()
    agent = TTAgent.from_pretrained(args.checkpoint, device="cpu")
    dataset = load_minari_dataset(args.dataset)
    episode = load_episodes(dataset)[args.episode]
    paths = analyze_episode(
        agent,
        episode,
        args.out,
        start=args.start,
        horizon=args.horizon,
        n_samples=args.samples,
        env_id=dataset.spec.env_spec.id,
    )
    for name, path in paths.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
