"""TransitionLayout: slot sizes and offsets, goal columns, validation, JSON round trip."""

from __future__ import annotations

import pytest

from tt_agents.layout import TransitionLayout


def test_slots_follow_observation_action_reward_value() -> None:
    layout = TransitionLayout(observation_dim=17, action_dim=6)
    assert layout.transition_dim == 25 and layout.n_columns == 25
    assert layout.observation_slice == slice(0, 17) and layout.action_slice == slice(17, 23)
    assert (layout.reward_index, layout.value_index) == (23, 24)
    assert layout.goal_slice == slice(25, 25), "no goal columns"


def test_goal_columns_come_after_the_transition_columns() -> None:
    layout = TransitionLayout(observation_dim=4, action_dim=2, goal_dim=2)
    assert layout.transition_dim == 8, "goal tokens are a prefix, not part of every transition"
    assert layout.goal_slice == slice(8, 10) and layout.n_columns == 10
    assert layout.window_tokens(3) == 2 + 3 * 8, "the goal prefix once, then the transitions"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"observation_dim": 0, "action_dim": 1}, "observation_dim"),
        ({"observation_dim": 1, "action_dim": 0}, "action_dim"),
        ({"observation_dim": 1, "action_dim": 1, "goal_dim": -1}, "goal_dim"),
    ],
)
def test_sizes_are_validated(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        TransitionLayout(**kwargs)


def test_round_trip_through_a_dict() -> None:
    layout = TransitionLayout(observation_dim=3, action_dim=1, goal_dim=2)
    assert TransitionLayout.from_dict(layout.to_dict()) == layout
