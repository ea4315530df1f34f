"""Spaces: Dict observations flattened like gymnasium, checks, and the JSON form kept in checkpoints."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.wrappers import FlattenObservation
from helpers import pendulum_episodes

from tt_agents.baselines import BCAgent
from tt_agents.envs import FOUR_ROOMS_ID
from tt_agents.spaces import (
    categorical_rows,
    check_action_space,
    check_observation_space,
    dict_keys,
    discrete_rows,
    entry_categories,
    flatten_observation,
    flatten_space,
    resolve_device,
    scalar_keys,
    space_categories,
    space_from_dict,
    space_to_dict,
)


def test_flattening_matches_gymnasium_flatten_observation() -> None:
    env = gym.make(FOUR_ROOMS_ID)
    wrapped = FlattenObservation(gym.make(FOUR_ROOMS_ID))
    observation, _ = env.reset(seed=3)
    flat, _ = wrapped.reset(seed=3)
    keys = dict_keys(env.observation_space)
    np.testing.assert_allclose(flatten_observation(observation, keys), flat)
    np.testing.assert_allclose(flatten_space(env.observation_space).low, wrapped.observation_space.low)
    batch = {key: np.stack([value, value + 1]) for key, value in observation.items()}  # (2, D) per key
    assert flatten_observation(batch, keys).shape == (2, flat.shape[0])


def test_flattening_errors_name_the_problem() -> None:
    keys = ("a", "b")
    with pytest.raises(ValueError, match=r"missing \['b'\]"):
        flatten_observation({"a": np.zeros(2)}, keys)
    with pytest.raises(ValueError, match="same n"):
        flatten_observation({"a": np.zeros((2, 2)), "b": np.zeros((3, 1))}, keys)
    with pytest.raises(TypeError, match="Dict observation"):
        flatten_observation(np.zeros(3), keys)
    with pytest.raises(TypeError, match=r"observation_space\['b'\]"):
        dict_keys(spaces.Dict({"a": spaces.Box(-1, 1, (2,)), "b": spaces.Discrete(3)}))


KITCHEN_LIKE = spaces.Dict(  # FrankaKitchen's layout; a Sequence keeps this (unsorted) order
    [
        ("observation", spaces.Box(-1.0, 1.0, (3,))),
        (
            "desired_goal",
            spaces.Dict([("microwave", spaces.Box(-1.0, 1.0, (1,))), ("kettle", spaces.Box(-2, 2, (2,)))]),
        ),
        (
            "achieved_goal",
            spaces.Dict([("microwave", spaces.Box(-1.0, 1.0, (1,))), ("kettle", spaces.Box(-2, 2, (2,)))]),
        ),
    ]
)


def test_nested_dicts_flatten_depth_first_in_the_spaces_order_like_gymnasium() -> None:
    keys = dict_keys(KITCHEN_LIKE)
    assert keys[:3] == ("observation", ("desired_goal", "microwave"), ("desired_goal", "kettle"))
    observation = KITCHEN_LIKE.sample()
    np.testing.assert_allclose(flatten_observation(observation, keys), spaces.flatten(KITCHEN_LIKE, observation))
    assert flatten_space(KITCHEN_LIKE) == spaces.flatten_space(KITCHEN_LIKE)
    assert space_from_dict(space_to_dict(KITCHEN_LIKE)) == KITCHEN_LIKE
    flat = spaces.flatten(KITCHEN_LIKE, observation)
    np.testing.assert_array_equal(flatten_observation(flat, keys, width=9), flat)  # a FlattenObservation's
    del observation["achieved_goal"]["kettle"]
    with pytest.raises(ValueError, match=r"missing \['achieved_goal/kettle'\]"):
        flatten_observation(observation, keys)
    with pytest.raises(TypeError, match=r"or its flattened array of 9 values"):
        flatten_observation(np.zeros(8), keys, width=9)
    with pytest.raises(TypeError, match=r"observation_space\['goal'\]\['door'\]"):
        dict_keys(spaces.Dict({"a": spaces.Box(-1, 1, (2,)), "goal": spaces.Dict({"door": spaces.Discrete(2)})}))


def test_agents_on_nested_dict_observations_act_on_them_and_on_their_flattened_form(tmp_path) -> None:
    from helpers import tiny_config

    from tt_agents import TTAgent

    rng = np.random.default_rng(0)
    episodes = []
    for _ in range(4):
        steps = [KITCHEN_LIKE.sample() for _ in range(13)]
        stacked = {
            "observation": np.stack([s["observation"] for s in steps]),
            **{
                g: {k: np.stack([s[g][k] for s in steps]) for k in ("microwave", "kettle")}
                for g in ("desired_goal", "achieved_goal")
            },
        }
        episodes.append(
            {"observations": stacked, "actions": rng.uniform(-1, 1, (12, 2)), "rewards": rng.normal(size=12)}
        )
    action_space = spaces.Box(-1.0, 1.0, (2,))
    observation = KITCHEN_LIKE.sample()
    flat = spaces.flatten(KITCHEN_LIKE, observation)
    bc = BCAgent(KITCHEN_LIKE, action_space, (8,), device="cpu").fit(episodes, 5, show_progress=False)
    np.testing.assert_array_equal(bc.predict(observation)[0], bc.predict(flat)[0])
    tt = TTAgent(KITCHEN_LIKE, action_space, config=tiny_config(n_steps=5), device="cpu").fit(
        episodes, show_progress=False
    )
    tt.reset()
    from_dict = tt.act(observation)
    tt.reset()
    np.testing.assert_array_equal(tt.act(flat), from_dict)
    tt.save_pretrained(tmp_path / "tt")
    loaded = TTAgent.from_pretrained(tmp_path / "tt", device="cpu")
    assert loaded.observation_keys == tt.observation_keys
    np.testing.assert_array_equal(loaded.act(observation), from_dict)


MIXED = spaces.Dict(  # a list keeps this (unsorted) order
    [
        ("position", spaces.Box(-1.0, 1.0, (2,))),
        ("direction", spaces.Discrete(4)),
        ("doors", spaces.MultiBinary(3)),
        ("inventory", spaces.Tuple((spaces.Discrete(3), spaces.Box(0.0, 1.0, (1,))))),
    ]
)


def test_categorical_entries_are_one_column_per_category_variable_not_one_hot() -> None:
    keys = dict_keys(MIXED, categorical=True)
    assert keys == ("position", "direction", "doors", ("inventory", 0), ("inventory", 1))
    assert entry_categories(MIXED, keys) == (None, None, 4, 2, 2, 2, 3, None)
    scalars = scalar_keys(MIXED, keys)
    assert scalars == ("direction", ("inventory", 0))
    one = {"position": np.array([0.5, -0.5]), "direction": 3, "doors": np.array([1, 0, 1]), "inventory": (2, [0.25])}
    np.testing.assert_array_equal(flatten_observation(one, keys, scalars=scalars), [0.5, -0.5, 3, 1, 0, 1, 2, 0.25])
    batch = {
        "position": np.zeros((2, 2)),
        "direction": np.array([1, 2]),
        "doors": np.ones((2, 3)),
        "inventory": (np.array([0, 1]), np.ones((2, 1))),
    }
    np.testing.assert_array_equal(flatten_observation(batch, keys, scalars=scalars)[:, [2, 6]], [[1, 0], [2, 1]])
    box = flatten_space(MIXED)
    np.testing.assert_array_equal(box.low, [-1, -1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(box.high, [1, 1, 3, 1, 1, 1, 2, 1])
    assert space_from_dict(space_to_dict(MIXED)) == MIXED
    blackjack = gym.make("Blackjack-v1").observation_space  # a Tuple of three Discretes
    tuple_keys = dict_keys(blackjack, categorical=True)
    assert tuple_keys == (0, 1, 2) and entry_categories(blackjack, tuple_keys) == (32, 11, 2)
    np.testing.assert_array_equal(flatten_observation((14, 10, 1), tuple_keys, scalars=tuple_keys), [14, 10, 1])
    with pytest.raises(TypeError, match="Tuple observation"):
        flatten_observation(np.zeros(3), tuple_keys)


def test_categorical_entries_are_refused_where_only_boxes_are_read_naming_the_entry_and_the_way_out() -> None:
    with pytest.raises(TypeError, match=r"observation_space\['direction'\] is Discrete\(4\).*FlattenObservation"):
        dict_keys(MIXED)
    with pytest.raises(TypeError, match=r"observation_space\['doors'\]"):
        dict_keys(spaces.Dict({"doors": spaces.MultiDiscrete([[2, 2], [2, 2]])}), categorical=True)


def test_space_json_round_trip_keeps_key_order() -> None:
    box = spaces.Box(-np.ones(2), np.ones(2), dtype=np.float64)
    space = spaces.Dict({"observation": box, "desired_goal": spaces.Box(-2, 2, (3,))})
    restored = space_from_dict(space_to_dict(space))
    assert restored == space and list(restored.spaces) == list(space.spaces)
    assert space_from_dict(space_to_dict(box)) == box
    assert space_from_dict(space_to_dict(spaces.Discrete(5))) == spaces.Discrete(5)


FLAT_SPACES = [
    (spaces.Box(-1, 1, (3,)), 3, None),
    (spaces.Discrete(4), 1, (4,)),
    (spaces.MultiDiscrete([2, 5, 3]), 3, (2, 5, 3)),
    (spaces.MultiBinary(4), 4, (2, 2, 2, 2)),
]
NOT_FLAT_SPACES = [
    spaces.Discrete(4, start=1),
    spaces.MultiDiscrete([2, 2], start=[0, 1]),
    spaces.MultiDiscrete([[2, 2], [2, 2]]),
    spaces.MultiBinary([2, 2]),
    spaces.Box(-1, 1, (2, 2)),
    spaces.Tuple((spaces.Discrete(2), spaces.Discrete(3))),
]


@pytest.mark.parametrize(("space", "size", "categories"), FLAT_SPACES)
def test_flat_spaces_give_a_token_per_entry_and_categorical_ones_their_categories(space, size, categories) -> None:
    assert check_action_space(space) == size and check_observation_space(space) == size
    assert space_categories(space) == categories
    assert space_from_dict(space_to_dict(space)) == space


@pytest.mark.parametrize("space", NOT_FLAT_SPACES)
def test_other_spaces_are_refused_naming_the_space(space) -> None:
    with pytest.raises(TypeError, match="action_space"):
        check_action_space(space)
    with pytest.raises(TypeError, match="observation_space"):
        check_observation_space(space)


def test_categorical_rows_are_checked_entry_by_entry() -> None:
    space = spaces.MultiDiscrete([2, 5])
    rows, single = categorical_rows(np.array([1, 4]), space, "observation")
    assert single and rows.shape == (1, 2) and rows.dtype == np.float64
    rows, single = categorical_rows([[0, 0], [1, 3]], space, "observation")
    assert not single and rows.tolist() == [[0, 0], [1, 3]]
    for bad in ([2, 0], [0, 5], [0, 1.5], [0, np.nan], [0], [[0, 1, 2]], [], "ab"):
        with pytest.raises(ValueError, match="observation"):
            categorical_rows(bad, space, "observation")
    with pytest.raises(TypeError, match="dict"):
        categorical_rows({"x": [0, 0]}, space, "observation")


def test_boxes_of_several_axes_are_refused_with_the_way_to_flatten_them() -> None:
    image = spaces.Box(0, 255, (7, 7, 3), dtype=np.uint8)  # e.g. MiniGrid's partial view
    with pytest.raises(TypeError, match=r"FlattenObservation\(env\).*\(T, 147\)\): each of its 147 values"):
        check_observation_space(image)
    with pytest.raises(TypeError, match=r"into a Box of shape \(4,\) \(an ActionWrapper"):
        check_action_space(spaces.Box(-1, 1, (2, 2)))


def test_discrete_observations_become_rows_of_one_category() -> None:
    space = spaces.Discrete(5)
    rows, single = discrete_rows(np.int64(3), space)
    assert single and rows.shape == (1, 1) and rows.dtype == np.float64 and rows[0, 0] == 3
    rows, single = discrete_rows([0, 4, 2], space)
    assert not single and rows[:, 0].tolist() == [0, 4, 2]
    assert discrete_rows(np.array([[1], [2]]), space)[0][:, 0].tolist() == [1, 2]
    for bad in (5, -1, 1.5, np.nan, [], [[1, 2]], "a"):
        with pytest.raises(ValueError, match="observation"):
            discrete_rows(bad, space)
    with pytest.raises(TypeError, match="dict"):
        discrete_rows({"x": 1}, space)


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")


def test_baseline_on_dict_observations_acts_like_on_flat_ones(tmp_path) -> None:
    episodes = pendulum_episodes(n_episodes=3, steps=40)
    dict_episodes = [
        {**ep, "observations": {"position": ep["observations"][:, :2], "velocity": ep["observations"][:, 2:]}}
        for ep in episodes
    ]
    part = spaces.Box(-np.inf, np.inf, (2,), dtype=np.float64)
    dict_space = spaces.Dict({"position": part, "velocity": part})
    action_space = spaces.Box(-3.0, 3.0, (1,), dtype=np.float32)
    flat = BCAgent(flatten_space(dict_space), action_space, (16,), device="cpu").fit(episodes, 20, show_progress=False)
    agent = BCAgent(dict_space, action_space, (16,), device="cpu").fit(dict_episodes, 20, show_progress=False)
    agent.save(tmp_path / "bc.pt")
    loaded = BCAgent.load(tmp_path / "bc.pt", device="cpu")
    observations = np.array([[0.0, 0.1, 0.0, -0.1], [0.05, 0.0, 0.1, 0.0]])
    as_dict = {"position": observations[:, :2], "velocity": observations[:, 2:]}
    expected = flat.predict(observations)[0]
    np.testing.assert_array_equal(agent.predict(as_dict)[0], expected)
    np.testing.assert_array_equal(loaded.predict(as_dict)[0], expected)
    assert loaded.observation_space == dict_space


@pytest.mark.parametrize(
    ("device", "error", "match"),
    [
        ("bogus", ValueError, "not a torch device"),
        (3.5, TypeError, "device must be a string"),
        ("mps", ValueError, "'cpu' and 'cuda' devices only"),
        ("meta", ValueError, "'cpu' and 'cuda' devices only"),
        pytest.param(
            "cuda",
            ValueError,
            "no usable CUDA device",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present"),
        ),
        pytest.param(
            "cuda:64", ValueError, "CUDA device", marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA")
        ),
    ],
)
def test_a_device_that_does_not_exist_here_is_a_clear_error(device, error, match) -> None:
    with pytest.raises(error, match=match):
        resolve_device(device)
