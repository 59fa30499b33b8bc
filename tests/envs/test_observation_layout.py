import gymnasium as gym
import numpy as np
import pytest

import envs
from envs.layout import FlattenObservation, ObservationLayout


@pytest.mark.parametrize(
    "task, fields",
    [
        ("FetchPush-v4", (("observation", 25), ("achieved_goal", 3), ("desired_goal", 3))),
        ("FetchReach-v4", (("observation", 10), ("achieved_goal", 3), ("desired_goal", 3))),
        ("Pendulum-v1", (("obs", 3),)),
    ],
)
def test_layout_order_and_dims(task, fields):
    raw = gym.make(task)
    env = FlattenObservation(raw)
    assert env.layout.fields == fields
    assert env.observation_space.shape == (env.layout.dim,)
    assert env.observation_space.dtype == np.float32
    obs, _ = env.reset(seed=3)
    raw_obs, _ = gym.make(task).reset(seed=3)
    assert obs.dtype == np.float32 and obs.shape == (env.layout.dim,)
    if isinstance(raw_obs, dict):
        for name, sl in env.layout.slices.items():
            np.testing.assert_array_equal(obs[sl], raw_obs[name].astype(np.float32))
    else:
        np.testing.assert_array_equal(obs, raw_obs.astype(np.float32))


def test_fetch_push_dim_is_31():
    layout = envs.describe_task("FetchPush-v4").layout
    assert layout.dim == 31
    assert layout.slices["desired_goal"] == slice(28, 31)
    assert layout.names == ("observation", "achieved_goal", "desired_goal")


def test_layout_json_round_trip_and_errors():
    layout = ObservationLayout((("observation", 4), ("desired_goal", 2)))
    assert ObservationLayout.from_list(layout.to_list()) == layout
    assert layout.to_list() == [["observation", 4], ["desired_goal", 2]]
    flat = layout.flatten({"desired_goal": np.array([5.0, 6.0]), "observation": np.arange(4.0)})
    np.testing.assert_array_equal(flat, [0, 1, 2, 3, 5, 6])
    with pytest.raises(ValueError, match="desired_goal"):
        layout.flatten({"observation": np.arange(4.0)})
    with pytest.raises(ValueError, match="has 3 values, layout expects 4"):
        layout.flatten({"observation": np.arange(3.0), "desired_goal": np.zeros(2)})
    with pytest.raises(ValueError, match="duplicate"):
        ObservationLayout((("a", 1), ("a", 2)))


def test_non_goal_dict_keeps_space_order():
    space = gym.spaces.Dict({"b": gym.spaces.Box(0, 1, (2,)), "a": gym.spaces.Box(0, 1, (1,))})
    assert ObservationLayout.from_space(space).names == tuple(space.spaces)
