"""evaluate(): SB3's evaluate_policy underneath, normalized scores, timing, real rewards on request."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import ENV_ID

from tt_agents import evaluate
from tt_agents.evaluation import make_vec_env


def test_evaluate_reports_returns_timing_and_normalized_score(trained_agent) -> None:
    trained_agent.dataset_info.update(ref_min_score=0.0, ref_max_score=10.0)
    try:
        venv = make_vec_env(ENV_ID, n_envs=2, max_episode_steps=6)
        result = evaluate(trained_agent, venv, n_episodes=3, show_progress=False)
        cut_short = evaluate(trained_agent, ENV_ID, n_episodes=1, show_progress=False, max_episode_steps=6)
    finally:
        del trained_agent.dataset_info["ref_min_score"], trained_agent.dataset_info["ref_max_score"]
    assert len(result.returns) == len(result.lengths) == 3
    assert all(0 < n <= 6 for n in result.lengths)
    np.testing.assert_allclose(result.normalized_returns, [10.0 * r for r in result.returns])
    assert result.ms_per_call > 0 and result.ms_per_action == result.ms_per_call / 2
    assert "normalized score" in result.summary()
    assert cut_short.normalized_returns is None  # the reference scores are for full-length episodes


def test_evaluate_is_repeatable_for_a_seed(trained_agent) -> None:
    kwargs = dict(n_episodes=2, n_envs=1, show_progress=False, max_episode_steps=6, seed=3)
    assert evaluate(trained_agent, ENV_ID, **kwargs).returns == evaluate(trained_agent, ENV_ID, **kwargs).returns


def test_real_rewards_reach_the_context_when_asked(trained_agent) -> None:
    seen = []
    plan = trained_agent.planner.plan

    def recording_plan(context):
        seen.extend(np.concatenate(context.rewards).tolist())
        return plan(context)

    trained_agent.planner.plan = recording_plan
    try:
        evaluate(trained_agent, ENV_ID, n_episodes=1, show_progress=False, max_episode_steps=5, use_rewards=True)
    finally:
        del trained_agent.planner.plan
    assert seen and set(seen) == {1.0}, "InvertedPendulum pays 1 per step; those rewards fill the context"


class _StandStill:
    """An SB3-style policy that never moves."""

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        return np.zeros((len(observation["observation"]), 2), dtype=np.float32), None


def test_success_rate_of_any_sb3_style_policy_on_a_goal_env() -> None:
    from tt_agents.envs import FOUR_ROOMS_ID
    from tt_agents.envs.four_rooms_expert import ScriptedExpertPolicy

    expert = evaluate(ScriptedExpertPolicy(noise=0.0), FOUR_ROOMS_ID, n_episodes=4, n_envs=2, show_progress=False)
    assert expert.successes == [True] * 4 and expert.success_rate == 1.0 and "success 100%" in expert.summary()
    still = evaluate(_StandStill(), FOUR_ROOMS_ID, n_episodes=3, n_envs=2, show_progress=False, max_episode_steps=5)
    assert still.successes == [False] * 3 and still.lengths == [5, 5, 5]
    assert still.info["policy"] == "_StandStill" and still.info["mode"] is None


def test_no_success_figure_for_envs_that_do_not_report_it(trained_agent) -> None:
    result = evaluate(trained_agent, ENV_ID, n_episodes=1, show_progress=False, max_episode_steps=3)
    assert result.successes is None and result.success_rate is None


def test_success_lines_up_with_returns_without_monitor_and_kwargs_need_an_id() -> None:
    import gymnasium as gym
    import pytest
    from stable_baselines3.common.vec_env import DummyVecEnv

    from tt_agents.envs import FOUR_ROOMS_ID

    venv = DummyVecEnv([lambda: gym.make(FOUR_ROOMS_ID, max_episode_steps=4)] * 2)  # no Monitor
    result = evaluate(_StandStill(), venv, n_episodes=3, show_progress=False)
    assert len(result.returns) == 3 and result.successes == [False] * 3
    with pytest.raises(ValueError, match="not to an environment instance"):
        evaluate(_StandStill(), venv, n_episodes=1, show_progress=False, max_episode_steps=3)


class _Constant:
    """An SB3-style policy (no dataset info, like the baselines) that always takes the same action."""

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        return np.zeros((len(observation), 1), dtype=np.float32), None


def test_reference_scores_give_any_policy_a_normalized_score() -> None:
    import pytest

    plain = evaluate(_Constant(), ENV_ID, n_episodes=2, show_progress=False)
    assert plain.normalized_returns is None, "no reference scores given and none in the policy"
    scored = evaluate(_Constant(), ENV_ID, n_episodes=2, show_progress=False, reference=(0.0, 10.0))
    np.testing.assert_allclose(scored.normalized_returns, [10.0 * r for r in scored.returns])
    assert scored.to_dict()["normalized_stderr"] == scored.normalized_stderr is not None
    with pytest.raises(ValueError, match="finite and distinct"):
        evaluate(_Constant(), ENV_ID, n_episodes=1, show_progress=False, reference=(5.0, 5.0))
    with pytest.raises(ValueError, match="pair"):
        evaluate(_Constant(), ENV_ID, n_episodes=1, show_progress=False, reference=(0.0, 1.0, 2.0))
    as_list = evaluate(_Constant(), ENV_ID, n_episodes=2, show_progress=False, reference=[0.0, 10.0])
    assert as_list.normalized_returns == scored.normalized_returns
    with pytest.raises(TypeError, match="reference must be a pair .* got float"):
        evaluate(_Constant(), ENV_ID, n_episodes=1, show_progress=False, reference=100.0)


def test_reference_scores_come_from_a_dataset_or_its_id(tmp_path, monkeypatch) -> None:
    from tt_agents.data_making import inverted_pendulum_policy, record_dataset

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    dataset = record_dataset(
        ENV_ID,
        inverted_pendulum_policy(0.1),
        "test/ip/reference-v0",
        n_episodes=1,
        max_episode_steps=10,
        ref_min_score=0.0,
        ref_max_score=20.0,
        show_progress=False,
    )
    by_pair = evaluate(_Constant(), ENV_ID, n_episodes=2, show_progress=False, reference=(0.0, 20.0))
    for reference in (dataset, "test/ip/reference-v0"):
        result = evaluate(_Constant(), ENV_ID, n_episodes=2, show_progress=False, reference=reference)
        assert result.normalized_returns == by_pair.normalized_returns == [5.0 * r for r in by_pair.returns]
    unscored = record_dataset(
        ENV_ID,
        inverted_pendulum_policy(0.1),
        "test/ip/unscored-v0",
        n_episodes=1,
        max_episode_steps=10,
        show_progress=False,
    )
    for reference in (unscored, "test/ip/unscored-v0"):
        with pytest.warns(UserWarning, match="has no finite ref_min_score and ref_max_score .* no normalized score"):
            result = evaluate(_Constant(), ENV_ID, n_episodes=1, show_progress=False, reference=reference)
        assert result.normalized_returns is None


def test_normalized_score_is_d4rls_formula() -> None:
    from tt_agents.evaluation import normalized_score

    assert normalized_score([-20.0, 1620.0], ref_min=-20.0, ref_max=3260.0) == [0.0, 50.0]
    assert normalized_score(3260.0, -20.0, 3260.0) == [100.0]


def _first_observations(seed: int, n_envs: int, episodes_per_env: int) -> list[tuple[float, ...]]:
    venv = make_vec_env(ENV_ID, n_envs=n_envs, seed=seed)
    starts = [tuple(row) for row in venv.reset()]
    for _ in range(episodes_per_env - 1):  # end every episode at once, keep the start of the next one
        starts += [tuple(row) for row in venv.reset()]
    return starts


def test_evaluation_seeds_draw_disjoint_starts_across_seeds_and_episodes() -> None:
    first = _first_observations(seed=10_000, n_envs=5, episodes_per_env=2)
    second = _first_observations(seed=10_001, n_envs=5, episodes_per_env=2)
    assert len(set(first) | set(second)) == 20, "seeds s and s+1 must not share a starting state"
    assert _first_observations(seed=10_000, n_envs=5, episodes_per_env=2) == first, "a seed is repeatable"


class CliffWalker:
    """An SB3-style policy that walks CliffWalking's 4 x 12 grid along the cliff's edge to the goal: up from the
    start (cell 36), right along row 2, down at its end."""

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        cells = np.asarray(observation)
        return np.where(cells == 36, 0, np.where(cells == 35, 2, 1)), state


def test_an_environment_without_a_time_limit_is_warned_about_unless_one_is_given() -> None:
    with pytest.warns(UserWarning, match="CliffWalking-v1 has no time limit.*max_episode_steps"):
        result = evaluate(CliffWalker(), "CliffWalking-v1", n_episodes=1, show_progress=False)
    assert result.lengths == [13]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert evaluate(CliffWalker(), "CliffWalking-v1", 1, show_progress=False, max_episode_steps=5).lengths == [5]


def test_an_environment_with_another_number_of_states_is_refused_before_it_runs() -> None:
    import gymnasium as gym

    from tt_agents.evaluation import check_spaces_match

    lake = gym.make("FrozenLake-v1")
    agent = SimpleNamespace(observation_space=lake.observation_space, action_space=lake.action_space)
    check_spaces_match(agent, make_vec_env("FrozenLake-v1", 1))
    with pytest.raises(ValueError, match=r"observation space Discrete\(48\) is not the agent's Discrete\(16\)"):
        check_spaces_match(agent, make_vec_env("CliffWalking-v1", 1))
    blackjack = gym.make("Blackjack-v1")  # a Tuple of Discretes: compared entry by entry
    agent = SimpleNamespace(observation_space=blackjack.observation_space, action_space=blackjack.action_space)
    check_spaces_match(agent, make_vec_env("Blackjack-v1", 1))
    agent.observation_space = gym.spaces.Tuple(
        (gym.spaces.Discrete(32), gym.spaces.Discrete(10), gym.spaces.Discrete(2))
    )
    with pytest.raises(ValueError, match="observation space Tuple"):
        check_spaces_match(agent, make_vec_env("Blackjack-v1", 1))


@pytest.mark.parametrize("counts", [{"n_episodes": 0}, {"n_episodes": 2.5}, {"n_envs": 0}, {"n_episodes": True}])
def test_episode_and_environment_counts_that_are_not_positive_integers_are_refused(counts) -> None:
    import gymnasium as gym

    from tt_agents.baselines import BCAgent

    env = gym.make("Pendulum-v1")
    policy = BCAgent(env.observation_space, env.action_space, device="cpu")
    with pytest.raises(ValueError, match="must be a positive integer"):
        evaluate(policy, "Pendulum-v1", **counts, reference=(0.0, 1.0), show_progress=False)
