"""robopg's single envs follow Gymnasium's conventions: its own checker passes on every first-class task with the
default randomisation, and the wrappers record their constructor arguments, so ``gym.make(env.spec)`` rebuilds
the same env (same wrappers, same spec and seed: the same observations)."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.fetch import FETCH_TASKS


def wrapper_names(env: gym.Env) -> list[str]:
    names = []
    while isinstance(env, gym.Wrapper):
        names.append(type(env).__name__)
        env = env.env
    return names


@pytest.mark.parametrize("task", FETCH_TASKS)
def test_gymnasium_check_env_passes_with_randomisation(task):
    env = envs.make_env(task, seed=4, randomization="default")
    try:
        with warnings.catch_warnings():
            # Its advice (check env.unwrapped; the goal fields' Box bounds are infinite) is not a failure.
            warnings.simplefilter("ignore", UserWarning)
            # Rendering is skipped: "human" mode needs a display (videos have their own tests).
            check_env(env, skip_render_check=True)
    finally:
        env.close()


@pytest.mark.parametrize("task", ["FetchReachDense-v4", "FetchPickAndPlace-v4"])
def test_gym_make_of_the_spec_rebuilds_the_same_env(task):
    env = envs.make_env(task, seed=4, randomization="default")
    again = gym.make(env.spec)
    try:
        assert wrapper_names(again) == wrapper_names(env)
        assert "DomainRandomization" in wrapper_names(env)
        assert again.get_wrapper_attr("randomization_spec") == env.get_wrapper_attr("randomization_spec")
        obs, info = env.reset()  # no seed: the construction seed (4) is used
        obs_again, info_again = again.reset()
        np.testing.assert_array_equal(obs, obs_again)
        assert info["randomization"] == info_again["randomization"]
        action = np.full(env.action_space.shape, 0.3, dtype=np.float32)
        for _ in range(3):
            np.testing.assert_array_equal(env.step(action)[0], again.step(action)[0])
    finally:
        env.close()
        again.close()
