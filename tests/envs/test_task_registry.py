import ast
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import envs
from envs.batched import FetchTask
from envs.fetch import FETCH_TASKS, has_object


def test_describe_fetch_and_generic_tasks():
    push = envs.describe_task("FetchPushDense-v4")
    assert push.layout.dim == 31
    assert push.control_dt == pytest.approx(0.04)
    assert push.max_episode_steps == 50
    assert push.success_key == "is_success"
    np.testing.assert_array_equal(push.action_low, -np.ones(4))
    pendulum = envs.describe_task("Pendulum-v1")
    assert pendulum.layout.fields == (("obs", 3),)
    assert pendulum.control_dt == pytest.approx(0.05)
    assert pendulum.success_key is None
    np.testing.assert_array_equal(pendulum.action_high, [2.0])


def test_unknown_and_non_box_tasks_raise():
    with pytest.raises(ValueError, match=r"unknown task 'FetchPsh-v4'.*FetchPush-v4.*Box action space"):
        envs.make_env("FetchPsh-v4")
    with pytest.raises(ValueError, match=r"'CartPole-v1' has a Discrete action space.*Box"):
        envs.make_env("CartPole-v1")


@pytest.mark.parametrize("profile", envs.list_profiles())
def test_every_shipped_profile_applies(profile):
    env = envs.make_env("FetchPush-v4", seed=0, randomization="default", profile=profile)
    obs, info = env.reset()
    spec = envs.load_profile(profile)
    for name in spec.names:
        if name not in env.get_wrapper_attr("inactive_parameters"):
            assert info["randomization"][name] == spec[name].value
    obs, *_ = env.step(np.zeros(4, dtype=np.float32))
    assert np.isfinite(obs).all()


def test_heavy_slippery_profile_and_user_profile(tmp_path):
    env = envs.make_env("FetchPush-v4", profile="heavy_slippery")
    env.reset(seed=0)
    model = env.unwrapped.model
    assert model.body_mass[model.body("object0").id] == 3.0
    user = tmp_path / "my_robot.toml"
    user.write_text('[action_latency]\ndistribution = "fixed"\nvalue = 1\n')
    _, info = envs.make_env("Pendulum-v1", profile=user).reset(seed=0)
    assert info["randomization"] == {"action_latency": 1.0}


def test_envs_imports_stay_inside_the_boundary():
    allowed = {"numpy", "mujoco", "gymnasium", "gymnasium_robotics", "envs"}
    package = Path(envs.__file__).parent
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = [node.module.split(".")[0]]
            else:
                continue
            for root in roots:
                assert root in allowed or root in sys.stdlib_module_names, f"{path.name} imports {root}"


@pytest.mark.parametrize("task", FETCH_TASKS)
def test_fetch_facts_agree_with_gymnasium_robotics(task):
    """envs/fetch.py names the family once; its has_object must be the env's own flag."""
    env = gym.make(task)
    try:
        assert has_object(task) == bool(env.unwrapped.has_object)
        assert FetchTask.from_gym(task).has_object == has_object(task)
    finally:
        env.close()
    assert not has_object("Pendulum-v1")
