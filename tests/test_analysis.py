"""The model as a predictor: sampled rollouts, binned marginals and their likelihood, the oracle bound, the
Markovian ablation's reach, attention maps."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from helpers import FROZEN_LAKE_ID, cartpole_episodes, frozen_lake_episodes, pendulum_episodes, tiny_config

from tt_agents import TTAgent
from tt_agents.analysis import (
    analyze_episode,
    attention_maps,
    bin_widths,
    marginal_densities,
    oracle_log_likelihood,
    partially_observed,
    plot_attention,
    sample_rollouts,
    state_log_likelihood,
)
from tt_agents.data_loading import load_episodes

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def episode():
    return load_episodes(pendulum_episodes(n_episodes=1, steps=60, seed=7))[0]


def test_rollouts_follow_recorded_actions_and_repeat_with_their_seed(trained_agent, episode) -> None:
    lay = trained_agent.layout
    rollouts = sample_rollouts(trained_agent, episode, start=10, horizon=6, n_samples=8, seed=3)
    assert rollouts.observation_tokens.shape == rollouts.observations.shape == (8, 7, lay.observation_dim)
    assert rollouts.actions.shape == (8, 6, lay.action_dim) and rollouts.rewards.shape == (8, 6)
    recorded = trained_agent.tokenizer.decode(
        trained_agent.tokenizer.encode(episode.actions[10:16], columns=lay.action_slice), columns=lay.action_slice
    )
    np.testing.assert_array_equal(rollouts.actions, np.broadcast_to(recorded, (8, 6, lay.action_dim)))
    start = trained_agent.tokenizer.encode(episode.observations[10], columns=lay.observation_slice)
    assert (rollouts.observation_tokens[:, 0] == start).all()
    again = sample_rollouts(trained_agent, episode, start=10, horizon=6, n_samples=8, seed=3)
    np.testing.assert_array_equal(again.observation_tokens, rollouts.observation_tokens)
    sampled = sample_rollouts(trained_agent, episode, start=0, horizon=20, n_samples=4, actions="model")
    assert sampled.actions.shape == (4, 20, lay.action_dim) and len(np.unique(sampled.actions[:, :, 0])) > 1
    with pytest.raises(ValueError, match="exceeds the episode"):
        sample_rollouts(trained_agent, episode, start=55, horizon=10)


def test_marginals_are_densities_and_no_model_beats_the_oracle(trained_agent, episode) -> None:
    tokenizer, columns = trained_agent.tokenizer, trained_agent.layout.observation_slice
    rollouts = sample_rollouts(trained_agent, episode, start=5, horizon=30, n_samples=50)
    density = marginal_densities(rollouts.observation_tokens[:, 1:], tokenizer, columns)  # (H, D, N)
    np.testing.assert_allclose((density * bin_widths(tokenizer, columns)[None]).sum(-1), 1.0, rtol=1e-9)
    reference = episode.observations[6:36]
    model = state_log_likelihood(rollouts.observation_tokens[:, 1:], reference, tokenizer, columns)
    oracle = oracle_log_likelihood(reference, tokenizer, columns)
    assert model.shape == oracle.shape == (30,) and np.all(model <= oracle + 1e-9)
    perfect = np.asarray(tokenizer.encode(reference, columns=columns))[None].repeat(50, 0)  # all samples right
    assert state_log_likelihood(perfect, reference, tokenizer, columns, smoothing=0.0) == pytest.approx(oracle)


def test_a_markovian_model_never_looks_past_the_last_transition(trained_agent, episode) -> None:
    config = tiny_config()  # trained as the session's agent, with a window of two transitions
    config.model = replace(config.model, sequence_length=2)
    markov = TTAgent(*_spaces(), config=config, device="cpu").fit(pendulum_episodes(), show_progress=False)
    windowed = trained_agent  # four transitions: it does look further back

    other_past = replace(episode, observations=episode.observations.copy(), actions=episode.actions.copy())
    other_past.observations[:9] += 0.5  # a different history up to the last transition before step 10
    other_past.actions[:9] *= -1
    same = [sample_rollouts(markov, e, start=10, horizon=8, n_samples=64, seed=1) for e in (episode, other_past)]
    np.testing.assert_array_equal(same[0].observation_tokens, same[1].observation_tokens)
    differ = [sample_rollouts(windowed, e, start=10, horizon=8, n_samples=64, seed=1) for e in (episode, other_past)]
    assert not np.array_equal(differ[0].observation_tokens, differ[1].observation_tokens)


def test_attention_maps_are_labelled_distributions_and_plot(trained_agent, episode, tmp_path) -> None:
    maps, labels = attention_maps(trained_agent, episode, start=3)
    model = trained_agent.model
    T = model.config.sequence_length * trained_agent.layout.transition_dim - 1
    assert maps.shape == (model.config.n_layer, model.config.n_head, T, T) and len(labels) == T
    assert labels[:6] == ["s0", "s1", "s2", "s3", "a0", "r"] and labels[6] == "V"
    np.testing.assert_allclose(maps.sum(-1), 1.0, rtol=1e-5)
    assert np.all(maps[..., [i for i, label in enumerate(labels) if label == "V"]] == 0)
    out = plot_attention(maps, labels, tmp_path / "attention.png")
    assert out.read_bytes()[:4] == b"\x89PNG"


def _spaces():
    import gymnasium as gym
    from helpers import ENV_ID

    env = gym.make(ENV_ID)
    return env.observation_space, env.action_space


_RENDER = """
import numpy as np, gymnasium as gym, sys
from tt_agents.analysis import image_strip, render_observations, save_gif, save_image
env = gym.make("Hopper-v5")
obs, _ = env.reset(seed=0)
states = [obs]
for _ in range(3):
    obs = env.step(env.action_space.sample())[0]
    states.append(obs)
states = np.array(states)
states[2, 1] += 0.8  # a clearly different pose
frames = render_observations("Hopper-v5", states, width=48, height=40)
assert frames.shape == (4, 40, 48, 3) and frames.dtype == np.uint8
assert not np.array_equal(frames[1], frames[2])
strip = image_strip([frames, frames], every=2)
assert strip.shape == (80, 96, 3)
save_image(strip, sys.argv[1] + "/strip.png")
save_gif([frames, frames], sys.argv[1] + "/rollout.gif")
"""


@pytest.mark.parametrize("final_observation", [True, False])
def test_an_episode_shorter_than_the_horizon_is_analysed_to_its_last_state(
    trained_agent, tmp_path, final_observation
) -> None:
    short = load_episodes(pendulum_episodes(n_episodes=1, steps=9, seed=3))[0]
    if not final_observation:
        short = short.replaced(final_observation=None)
    paths = analyze_episode(trained_agent, short, tmp_path, horizon=50, n_samples=4)
    assert paths["likelihood"].is_file() and paths["attention"].is_file()
    with pytest.raises(ValueError, match="no real state after it"):
        analyze_episode(trained_agent, short, tmp_path, start=len(short) - int(not final_observation), n_samples=4)


def test_decoded_states_render_to_a_strip_and_a_gif(tmp_path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "MUJOCO_GL": "egl"}  # headless; MuJoCo reads it when first imported, so a fresh process
    done = subprocess.run([sys.executable, "-c", _RENDER, str(tmp_path)], env=env, capture_output=True, text=True)
    if done.returncode != 0 and ("opengl" in done.stderr.lower() or "egl" in done.stderr.lower()):
        pytest.skip(f"no headless OpenGL here: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "strip.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "rollout.gif").read_bytes()[
        :3
    ] == b"GIF"


@pytest.mark.parametrize("per", ["state", "episode"])
def test_partially_observed_masks_dimensions_and_keeps_the_rest(per) -> None:
    episodes = load_episodes(pendulum_episodes(n_episodes=6, steps=80, seed=2))
    masked = partially_observed(episodes, probability=0.5, per=per, seed=4)
    assert len(masked) == len(episodes)
    kept = []
    for before, after in zip(episodes, masked, strict=True):
        full = np.vstack([before.observations, before.final_observation])  # (T + 1, O)
        seen = np.vstack([after.observations, after.final_observation])
        keep = seen != 0
        np.testing.assert_array_equal(seen[keep], full[keep])  # a dimension is either shown as it was, or 0
        np.testing.assert_array_equal(after.actions, before.actions)
        np.testing.assert_array_equal(after.rewards, before.rewards)
        assert after.terminated == before.terminated
        if per == "episode":
            assert (keep == keep[0]).all()  # one mask for the whole episode
        else:
            assert not (keep == keep[0]).all()
        kept.append(keep.mean())
    assert 0.3 < np.mean(kept) < 0.7
    again = partially_observed(episodes, probability=0.5, per=per, seed=4)
    np.testing.assert_array_equal(again[0].observations, masked[0].observations)
    assert partially_observed(episodes, probability=0.0)[0].observations.tolist() == episodes[0].observations.tolist()


def test_partially_observed_keeps_discrete_actions_and_refuses_bad_settings() -> None:
    episodes = load_episodes(cartpole_episodes(n_episodes=2))
    masked = partially_observed(episodes, seed=1)
    assert masked[0].discrete_actions and np.array_equal(masked[0].actions, episodes[0].actions)
    with pytest.raises(ValueError, match="probability"):
        partially_observed(episodes, probability=1.5)
    with pytest.raises(ValueError, match="per must be"):
        partially_observed(episodes, per="step")


def test_rollouts_never_draw_a_category_a_discrete_space_does_not_have() -> None:
    import gymnasium as gym

    lake = gym.make(FROZEN_LAKE_ID, is_slippery=False)
    agent = TTAgent(lake.observation_space, lake.action_space, config=tiny_config(n_steps=20), device="cpu")
    episodes = frozen_lake_episodes(n_episodes=10)
    agent.fit(episodes, show_progress=False)
    episode = load_episodes(episodes)[0]
    for actions in ("recorded", "model"):
        rollouts = sample_rollouts(agent, episode, 0, 3, 300, actions=actions)
        assert rollouts.observation_tokens.max() < 16 and rollouts.actions.max() <= 3  # 20 bins, 16 cells, 4 moves
        assert set(np.unique(rollouts.observations)) <= set(range(16))
    with pytest.raises(ValueError, match="0 is a real one"):
        partially_observed([episode])
