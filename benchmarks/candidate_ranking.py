"""Does reward-mode planning rank its candidate actions the way their real outcomes rank them?

What it does
    For ``--states`` states drawn from a locomotion dataset (each with its recorded context of past transitions),
    it draws ``--candidates`` first actions as reward-mode planning samples them (beam 1, one candidate per draw,
    the agent's ``bin_ranking`` and ``cdf_act``), adds the agent's expected action (imitation mode), and scores
    each two ways:

    * predicted: what the reward-mode search scores a one-step plan with, ``r + discount * V`` (the model's
      expected reward and reward-to-go after the action, the reward token decoded greedily as the planner does);
    * real: the MuJoCo environment set to the state (positions and velocities from the observation; the x
      position, which the observation leaves out, does not change the dynamics), the candidate applied, then a
      behaviour-cloning policy for ``--rollout`` steps; the discounted return with the dataset's -100 terminal
      penalty, as the reward-to-go target counts it.

    It prints, per state and averaged, the Spearman correlation of predicted against real, and how much better
    in reality the predicted-best candidate is than the average candidate and than the expected action. With
    ``--critic`` (a saved ``IQLAgent``), the same for the critic's ``Q(s, a)`` of each candidate: what ``q`` mode
    would score a one-step plan with.

How to run
    python benchmarks/candidate_ranking.py --dataset tt-agents/walker2d/medium-v0 --agent runs/tt --bc runs/bc
    python benchmarks/candidate_ranking.py ... --critic runs/iql   # also rank by IQL's Q

Agents are saved ``TTAgent`` and ``BCAgent`` folders (e.g. the cells of ``benchmarks/d4rl_locomotion.py``).
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch
from scipy.stats import spearmanr

from tt_agents import TTAgent
from tt_agents.baselines import BCAgent, IQLAgent
from tt_agents.data_loading import load_episodes, load_minari_dataset
from tt_agents.planner import PlanningContext

TERMINAL_PENALTY = -100.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="a locally available Minari locomotion dataset id")
    parser.add_argument("--agent", required=True, help="a saved TTAgent folder")
    parser.add_argument("--bc", required=True, help="a saved BCAgent folder (the continuation policy)")
    parser.add_argument("--states", type=int, default=40)
    parser.add_argument("--candidates", type=int, default=16)
    parser.add_argument("--rollout", type=int, default=60, help="steps of BC after each candidate")
    parser.add_argument("--bin-ranking", choices=("probability", "density"), help="default: the agent's setting")
    parser.add_argument("--critic", help="a saved IQLAgent folder: also rank the candidates by its Q(s, a)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


class RealReturn:
    """The discounted return of an action from a state given as an observation, then a fixed policy."""

    def __init__(self, env_id: str, policy: BCAgent, steps: int, discount: float) -> None:
        self.env = gym.make(env_id).unwrapped
        self.env.reset(seed=0)
        self.n_positions = self.env.model.nq  # the observation holds positions 1.. and every velocity
        self.policy, self.steps, self.discount = policy, steps, discount

    def set_state(self, observation: np.ndarray) -> None:
        """Put the environment in the state ``observation`` shows (x position 0)."""
        qpos = np.concatenate([[0.0], observation[: self.n_positions - 1]])
        self.env.set_state(qpos, observation[self.n_positions - 1 :])

    def __call__(self, observation: np.ndarray, action: np.ndarray) -> float:
        self.set_state(observation)
        total, weight = 0.0, 1.0
        for _ in range(self.steps):
            observation, reward, terminated, _, _ = self.env.step(action)
            total += weight * (TERMINAL_PENALTY if terminated else reward)
            weight *= self.discount
            if terminated:
                break
            action = self.policy.predict(observation, deterministic=True)[0]
        return total


@torch.no_grad()
def predicted_scores(agent: TTAgent, context: PlanningContext, actions: np.ndarray) -> np.ndarray:
    """(C,) ``r + discount * V`` after each of ``actions`` (C, A) from one context, as the reward search scores."""
    planner, tokenizer, layout = agent.planner, agent.tokenizer, agent.layout
    n_bins, keep = tokenizer.n_bins, planner.keep_transitions
    tokens, pads = planner.context_tokens(context)  # (1, T), (1,)
    rows = len(actions)
    pads = pads.repeat(rows)
    cache, _ = agent.model.prefill(tokens.repeat(rows, 1), pad=pads if bool(pads.any()) else None)
    action_tokens = torch.as_tensor(tokenizer.encode(actions, columns=layout.action_slice), device=tokens.device)
    logits = agent.model.decode(cache, action_tokens, keep_transitions=keep)[:, -1]  # (C, V): the reward token
    reward = tokenizer.expectation(logits[:, :n_bins].softmax(-1), layout.reward_index)  # (C,)
    value_logits = agent.model.decode(cache, logits[:, :n_bins].argmax(-1)[:, None], keep_transitions=keep)[:, -1]
    value = tokenizer.expectation(value_logits[:, :n_bins].softmax(-1), layout.value_index)  # (C,)
    return (reward + planner.config.discount * value).cpu().numpy()


def candidate_actions(agent: TTAgent, context: PlanningContext, n: int, seed: int) -> np.ndarray:
    """(n + 1, A): n first actions sampled as reward mode samples them, then the expected action."""
    planner_config = agent.config.planner
    agent.configure_planner(mode="reward", beam_width=1, n_expand=1, horizon=1)
    sampled = []
    for j in range(n):
        agent.planner.seed(seed + j)
        sampled.append(agent.planner.plan(context).actions[0, 0])
    agent.configure_planner(mode="imitation", beam_width=1, horizon=1)
    expected = agent.planner.plan(context).actions[0, 0]
    agent.configure_planner(**vars(planner_config))
    return np.array([*sampled, expected])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)
    dataset = load_minari_dataset(args.dataset)
    agent = TTAgent.from_pretrained(args.agent, device="cpu")
    if args.bin_ranking:
        agent.configure_planner(bin_ranking=args.bin_ranking)
    real_return = RealReturn(
        dataset.spec.env_spec.id, BCAgent.from_pretrained(args.bc), args.rollout, agent.config.planner.discount
    )
    episodes = [e for e in load_episodes(dataset) if len(e.rewards) > 20]
    q_function = IQLAgent.from_pretrained(args.critic, device="cpu").q_function() if args.critic else None
    rng = np.random.default_rng(args.seed)
    k = agent.planner.context_transitions
    correlations, over_mean, over_expected = [], [], []
    q_correlations, q_over_mean = [], []
    for i in range(args.states):
        episode = episodes[rng.integers(len(episodes))]
        t = int(rng.integers(k, len(episode.rewards)))
        context = PlanningContext(
            [episode.observations[t - k : t + 1]], [episode.actions[t - k : t]], [episode.rewards[t - k : t]]
        )
        actions = candidate_actions(agent, context, args.candidates, seed=1000 * i)
        predicted = predicted_scores(agent, context, actions)
        real = np.array([real_return(episode.observations[t], a) for a in actions])
        sampled, expected = slice(0, args.candidates), args.candidates
        best = int(np.argmax(predicted[sampled]))
        correlations.append(spearmanr(predicted[sampled], real[sampled]).correlation)
        over_mean.append(real[best] - real[sampled].mean())
        over_expected.append(real[best] - real[expected])
        critic_line = ""
        if q_function is not None:
            observations = torch.as_tensor(np.repeat(episode.observations[t][None], len(actions), 0))  # (C, O)
            q = q_function(observations, torch.as_tensor(actions)).cpu().numpy()[sampled]  # (candidates,)
            q_correlations.append(spearmanr(q, real[sampled]).correlation)
            q_over_mean.append(real[int(np.argmax(q))] - real[sampled].mean())
            critic_line = f"; critic: spearman {q_correlations[-1]:+.2f}, its best {real[int(np.argmax(q))]:7.1f}"
        print(
            f"state {i:2d}: spearman {correlations[-1]:+.2f}; real return of the candidates "
            f"{real[sampled].mean():7.1f} ± {real[sampled].std():5.1f}, of the predicted best {real[best]:7.1f}, "
            f"of the expected action {real[expected]:7.1f}; predicted scores spread {predicted[sampled].std():.1f}"
            + critic_line,
            flush=True,
        )

    def mean_se(values: list[float]) -> str:
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values)]
        return f"{values.mean():+.2f} ± {values.std() / np.sqrt(len(values)):.2f}"

    planning = agent.config.planner
    print(f"\n{args.dataset}, {args.agent} ({planning.bin_ranking} ranking, cdf_act {planning.cdf_act})")
    print(f"Spearman correlation of predicted and real returns over the candidates: {mean_se(correlations)}")
    print(f"real return of the predicted-best candidate minus the candidates' mean: {mean_se(over_mean)}")
    print(f"real return of the predicted-best candidate minus the expected action's: {mean_se(over_expected)}")
    if q_function is not None:
        print(f"critic {args.critic}: Spearman correlation of Q and real returns: {mean_se(q_correlations)}")
        print(f"critic: real return of the best-Q candidate minus the candidates' mean: {mean_se(q_over_mean)}")


if __name__ == "__main__":
    main()
