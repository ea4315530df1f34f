"""Four-rooms data: the expert dataset, hindsight goals and relabelled prefixes, goal tokens in training windows."""

from __future__ import annotations

from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest
import torch

from tt_agents.data_loading import TrajectoryData, WindowDataset, load_episodes, relabelled_prefixes
from tt_agents.data_making.four_rooms import MixedNoiseExpert, training_episodes
from tt_agents.envs import FOUR_ROOMS_ID
from tt_agents.tokenizer import Tokenizer


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run much faster on one thread, and do not stall when the CPU is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def env() -> gym.Env:
    return gym.make(FOUR_ROOMS_ID)


def test_dataset_is_expert_goal_reaching(four_rooms_dataset) -> None:
    assert four_rooms_dataset.total_episodes == 8
    for episode in four_rooms_dataset.iterate_episodes():
        assert episode.terminations[-1], "every expert episode ends by reaching its goal"
        assert episode.rewards[-1] == 0.0 and np.all(episode.rewards[:-1] == -1.0)
        final = episode.observations["achieved_goal"][-1]
        assert np.linalg.norm(final - episode.observations["desired_goal"][-1]) < 0.05


def test_hindsight_goal_is_the_final_achieved_goal(four_rooms_dataset) -> None:
    episodes = load_episodes(four_rooms_dataset, observation_key="observation", goal_key="achieved_goal")
    raw = list(four_rooms_dataset.iterate_episodes())
    for episode, recorded in zip(episodes, raw, strict=True):
        np.testing.assert_array_equal(episode.goal, recorded.observations["achieved_goal"][-1])
        np.testing.assert_array_equal(episode.observations, recorded.observations["observation"][:-1])
    data = TrajectoryData.from_episodes(episodes)
    assert data.layout.goal_dim == 2 and data.layout.observation_dim == 2
    for goal, episode in zip(data.goals, episodes, strict=True):
        np.testing.assert_array_equal(goal, episode.goal)


def test_relabelled_prefixes_end_at_their_own_goal(four_rooms_dataset) -> None:
    episodes = load_episodes(four_rooms_dataset, observation_key="observation", goal_key="achieved_goal")
    out = relabelled_prefixes(episodes, 3, min_length=4, seed=0)
    assert out[0] is episodes[0], "the whole episodes are kept, in order, each followed by its prefixes"
    prefixes = [e for e in out if all(e is not whole for whole in episodes)]
    assert len(out) == len(episodes) + len(prefixes) and len(prefixes) > 0
    for prefix in prefixes:
        source = next(e for e in episodes if np.array_equal(e.observations[: len(prefix)], prefix.observations))
        t = len(prefix)
        assert 4 <= t < len(source) and prefix.terminated
        np.testing.assert_array_equal(prefix.actions, source.actions[:t])
        np.testing.assert_array_equal(prefix.goal, source.observations[t])  # the position reached: its goal
        np.testing.assert_array_equal(prefix.final_observation, source.observations[t])
        assert prefix.rewards[-1] == 0.0 and np.all(prefix.rewards[:-1] == -1.0)
    again = training_episodes(four_rooms_dataset, 3, seed=0)
    assert [len(e) for e in again] == [len(e) for e in out]


def test_mixed_noise_expert_draws_a_level_per_episode(env) -> None:
    expert = MixedNoiseExpert(env, (0.1, 0.5), seed=0)
    levels = set()
    for _ in range(20):
        expert.reset()
        levels.add(expert.expert.noise)
    assert levels == {0.1, 0.5}
    obs, _ = env.reset(seed=0)
    assert env.action_space.contains(expert(obs))


def test_goal_tokens_are_prepended_to_every_window(four_rooms_dataset) -> None:
    episodes = load_episodes(four_rooms_dataset, observation_key="observation", goal_key="achieved_goal")
    data = TrajectoryData.from_episodes(episodes)
    tokenizer = Tokenizer(n_bins=50, strategy="uniform").fit(data.token_columns())
    windows = WindowDataset(data, tokenizer, sequence_length=4)
    lay = data.layout
    expected = tokenizer.encode(np.stack(data.goals), columns=lay.goal_slice)  # (E, G)
    lengths = data.episode_lengths
    index = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    for e in range(data.n_episodes):
        last = index[e] + lengths[e] - 1
        tokens, mask = windows.batch(torch.tensor([index[e], last]))
        assert tokens.shape[1] == lay.goal_dim + 4 * lay.transition_dim
        np.testing.assert_array_equal(tokens[:, : lay.goal_dim].numpy(), np.repeat(expected[e][None], 2, 0))
        assert torch.all(mask[:, : lay.goal_dim] == 0), "goal tokens are context, not targets"
        first_obs = tokenizer.encode(data.joined[e][0, lay.observation_slice], columns=lay.observation_slice)
        np.testing.assert_array_equal(tokens[0, lay.goal_dim : lay.goal_dim + lay.observation_dim], first_obs)
