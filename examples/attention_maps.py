"""Attention maps of a trained Trajectory Transformer over one episode (paper Figure 4).

Loads a saved agent (``save_pretrained`` / ``tt-agents train``), takes one episode of a Minari dataset, and plots
every layer's and head's attention over a window of the episode: rows are the queries, columns the keys, ticks at
the first observation token of each transition; reward and reward-to-go tokens are left out as in the paper.
The paper's trained models show two kinds of heads: ones that attend to the same dimension of earlier states
(striped maps) and ones that attend mostly to the last transition (a band near the diagonal).

Run::

    tt-agents make-dataset hopper medium --cpu
    tt-agents train tt-agents/hopper/medium-v0 --env Hopper-v5 --out runs/hopper
    python examples/attention_maps.py runs/hopper tt-agents/hopper/medium-v0 --out runs/hopper/attention.png
"""

from __future__ import annotations

import argparse

from tt_agents import TTAgent
from tt_agents.analysis import attention_maps, plot_attention
from tt_agents.data_loading import load_episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a saved agent's folder")
    parser.add_argument("dataset", help="Minari dataset id of the episodes")
    parser.add_argument("--episode", type=int, default=-1)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--out", default="attention.png")
    args = parser.parse_args()
    agent = TTAgent.from_pretrained(args.checkpoint, device="cpu")
    episode = load_episodes(args.dataset, observation_key=agent.observation_keys)[args.episode]
    maps, labels = attention_maps(agent, episode, args.start)
    D = agent.layout.transition_dim
    same_dimension = [i for i, label in enumerate(labels) if label == labels[-1]]
    print(f"{maps.shape[0]} layers x {maps.shape[1]} heads over {maps.shape[2]} tokens; the last token is {labels[-1]}")
    for layer in range(maps.shape[0]):
        for head in range(maps.shape[1]):
            weights = maps[layer, head, -1]  # (T,) the last token's attention
            print(
                f"layer {layer} head {head}: {weights[same_dimension].sum():.2f} of it on the same dimension of "
                f"earlier states, {weights[-D:].sum():.2f} on the last transition's tokens"
            )
    print(f"wrote {plot_attention(maps, labels, args.out)}")


if __name__ == "__main__":
    main()
