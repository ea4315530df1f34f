"""ObservationReader: the layout an agent's spaces imply, its categorical columns, and observations as rows."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from tt_agents.observation_reader import ObservationReader

BOX3 = spaces.Box(-1.0, 1.0, (3,), np.float32)
BOX2 = spaces.Box(-1.0, 1.0, (2,), np.float32)


def test_a_box_observation_is_its_own_row_and_a_discrete_action_one_categorical_column() -> None:
    reader = ObservationReader.from_spaces(BOX3, spaces.Discrete(4), goal_mode=False)
    assert (reader.layout.observation_dim, reader.layout.action_dim, reader.layout.goal_dim) == (3, 1, 0)
    assert reader.keys is None and reader.categories() == {3: 4}
    rows, goals, single = reader.rows([0.1, 0.2, 0.3])
    assert single and goals is None and rows.shape == (1, 3) and rows.dtype == np.float64
    rows, _, single = reader.rows(np.zeros((5, 3)))
    assert not single and rows.shape == (5, 3)


def test_a_dict_observation_is_read_in_key_order_with_its_categorical_entries_as_columns() -> None:
    space = spaces.Dict({"velocity": BOX2, "room": spaces.Discrete(5), "position": BOX3})
    reader = ObservationReader.from_spaces(space, BOX2, goal_mode=False)
    assert reader.keys == ("position", "room", "velocity")  # sorted, as gymnasium's Dict keeps them
    assert reader.layout.observation_dim == 6 and reader.columns == (None, None, None, 5, None, None)
    assert reader.scalars == ("room",) and reader.categories() == {3: 5}
    observation = {"position": [1.0, 2.0, 3.0], "room": 4, "velocity": [5.0, 6.0]}
    rows, goals, single = reader.rows(observation)
    assert single and goals is None
    np.testing.assert_array_equal(rows, [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    with pytest.raises(ValueError, match="observation"):
        reader.rows({**observation, "room": 7})  # outside Discrete(5)


def test_goal_mode_reads_the_observation_and_the_desired_goal_apart() -> None:
    space = spaces.Dict({"observation": BOX3, "desired_goal": BOX2, "achieved_goal": BOX2})
    reader = ObservationReader.from_spaces(space, BOX2, goal_mode=True)
    assert (reader.layout.observation_dim, reader.layout.goal_dim) == (3, 2) and reader.keys is None
    rows, goals, single = reader.rows({"observation": np.ones((2, 3)), "desired_goal": np.zeros((2, 2))})
    assert not single and rows.shape == (2, 3) and goals.shape == (2, 2)
    with pytest.raises(ValueError, match="1 goals for 2 observations"):
        reader.rows({"observation": np.ones((2, 3)), "desired_goal": np.zeros(2)})
    with pytest.raises(TypeError, match="'observation' and 'desired_goal'"):
        reader.rows(np.ones(3))


@pytest.mark.parametrize(
    ("space", "match"),
    [
        (BOX3, "needs a Dict observation space"),
        (spaces.Dict({"observation": BOX3}), "missing {'desired_goal'}"),
    ],
)
def test_goal_mode_names_what_its_space_lacks(space: spaces.Space, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        ObservationReader.from_spaces(space, BOX2, goal_mode=True)


def test_an_array_reader_refuses_a_dict_and_a_wrong_width() -> None:
    reader = ObservationReader.from_spaces(BOX3, BOX2, goal_mode=False)
    with pytest.raises(TypeError, match="expects an array observation"):
        reader.rows({"position": [0.0, 0.0, 0.0]})
    with pytest.raises(ValueError, match=r"expected shape \(3,\)"):
        reader.rows(np.zeros(4))


def test_a_map_entry_takes_no_columns() -> None:
    space = spaces.Dict({"map": spaces.Box(0, 3, (4, 5), np.int64), "observation": BOX3})
    reader = ObservationReader.from_spaces(space, BOX2, goal_mode=False)
    assert reader.keys == ("observation",) and reader.layout.observation_dim == 3
