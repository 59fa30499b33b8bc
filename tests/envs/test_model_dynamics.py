import mujoco
import numpy as np
from spec_files import spec_file

import envs


def model_of(env):
    return env.unwrapped.model


def body(model, name):
    return mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)


def test_object_mass_by_name_without_compounding(tmp_path):
    env = envs.make_env("FetchPush-v4", seed=0, randomization=spec_file(tmp_path, object_mass=1.5))
    model = model_of(env)
    obj = body(model, "object0")
    inertia = model.body_inertia[obj].copy()
    _, info = env.reset()
    assert info["randomization"] == {"object_mass": 1.5}
    assert model.body_mass[obj] == 3.0
    np.testing.assert_allclose(model.body_inertia[obj], 1.5 * inertia)
    env.reset()  # same value again: restored from nominal first, so still 3.0 and not 4.5
    assert model.body_mass[obj] == 3.0

    other = envs.make_env("FetchPush-v4", randomization=spec_file(tmp_path, object_mass=0.5))
    other.reset(seed=0)
    assert model_of(other).body_mass[obj] == 1.0


def test_absolute_mode_replaces_nominal(tmp_path):
    path = tmp_path / "abs.toml"
    path.write_text('[object_mass]\ndistribution = "fixed"\nvalue = 0.25\nmode = "absolute"\n')
    env = envs.make_env("FetchPush-v4", randomization=path)
    env.reset(seed=0)
    obj = body(model_of(env), "object0")
    assert model_of(env).body_mass[obj] == 0.25


def test_frictions(tmp_path):
    env = envs.make_env(
        "FetchPush-v4", randomization=spec_file(tmp_path, table_friction=0.5, object_friction=0.7)
    )
    model = model_of(env)
    table_geoms = np.flatnonzero(model.geom_bodyid == body(model, "table0"))
    assert table_geoms.size >= 1
    nominal = model.geom_friction.copy()
    env.reset(seed=0)
    np.testing.assert_allclose(model.geom_friction[table_geoms, 0], 0.5 * nominal[table_geoms, 0])
    geom = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "object0")
    np.testing.assert_allclose(model.geom_friction[geom, 0], 0.7 * nominal[geom, 0])
    np.testing.assert_array_equal(model.geom_friction[:, 1:], nominal[:, 1:])  # torsional/rolling untouched


def test_gripper_gain_on_pick_and_place(tmp_path):
    env = envs.make_env("FetchPickAndPlace-v4", randomization=spec_file(tmp_path, gripper_gain=1.2))
    model = model_of(env)
    kp = model.actuator_gainprm[:, 0].copy()
    env.reset(seed=0)
    np.testing.assert_allclose(model.actuator_gainprm[:, 0], 1.2 * kp)
    np.testing.assert_allclose(model.actuator_biasprm[:, 1], -1.2 * kp)


def test_joint_damping_spares_the_base_slides(tmp_path):
    env = envs.make_env("FetchPush-v4", randomization=spec_file(tmp_path, joint_damping=2.0))
    model = model_of(env)
    nominal = model.dof_damping.copy()
    env.reset(seed=0)
    np.testing.assert_array_equal(model.dof_damping[:3], nominal[:3])  # robot0:slide0..2
    np.testing.assert_allclose(model.dof_damping[3:15], 2.0 * nominal[3:15])  # arm, head, fingers
    np.testing.assert_array_equal(model.dof_damping[15:], nominal[15:])  # object0 free joint


def test_joint_damping_generic_mujoco_env(tmp_path):
    env = envs.make_env("HalfCheetah-v5", randomization=spec_file(tmp_path, joint_damping=3.0, object_mass=2))
    nominal = model_of(env).dof_damping.copy()
    _, info = env.reset(seed=0)
    np.testing.assert_allclose(model_of(env).dof_damping, 3.0 * nominal)
    assert info["randomization"] == {"joint_damping": 3.0}
    assert env.get_wrapper_attr("inactive_parameters") == ("object_mass",)


def test_inactive_parameters_on_reach_and_pendulum():
    reach = envs.make_env("FetchReach-v4", randomization="default")
    _, info = reach.reset(seed=0)
    inactive = reach.get_wrapper_attr("inactive_parameters")
    assert set(inactive) == {"object_mass", "object_friction", "gripper_gain"}
    assert not set(inactive) & set(info["randomization"])
    assert "table_friction" in info["randomization"] and "action_scale" in info["randomization"]

    pendulum = envs.make_env("Pendulum-v1", randomization="default")
    _, info = pendulum.reset(seed=0)
    dynamics = {
        "object_mass",
        "object_friction",
        "table_friction",
        "gripper_gain",
        "joint_damping",
        "action_scale",
    }
    assert set(pendulum.get_wrapper_attr("inactive_parameters")) == dynamics
    assert set(info["randomization"]) == {
        "observation_noise",
        "observation_bias",
        "action_noise",
        "action_latency",
    }


def test_action_scale_scales_the_mocap_step(tmp_path):
    def gripper_travel(randomization):
        env = envs.make_env("FetchReach-v4", randomization=randomization)
        obs, _ = env.reset(seed=0)
        start = obs[:3].copy()
        for _ in range(3):
            obs, *_ = env.step(np.array([0.3, 0.0, 0.0, 0.0], dtype=np.float32))
        return obs[0] - start[0]

    nominal = gripper_travel("none")
    scaled = gripper_travel(spec_file(tmp_path, action_scale=0.5))
    assert nominal > 0.01
    assert abs(scaled / nominal - 0.5) < 0.1
