import mujoco
import numpy as np
import pytest
from spec_files import spec_file

import envs
from envs.dynamics import ModelDynamics
from envs.randomization import PARAMETERS, Kind, Mode


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
    object_parameters = {
        "object_mass",
        "object_friction",
        "object_damping",
        "object_size",
        "object_push",
        "object_push_probability",
    }
    assert set(inactive) == object_parameters | {"gripper_gain"}
    assert not set(inactive) & set(info["randomization"])
    assert {"table_friction", "table_height", "action_scale", "control_period"} <= set(info["randomization"])

    pendulum = envs.make_env("Pendulum-v1", randomization="default")
    _, info = pendulum.reset(seed=0)
    assert set(pendulum.get_wrapper_attr("inactive_parameters")) == {
        name for name, kind in PARAMETERS.items() if kind in (Kind.DYNAMICS, Kind.PERTURBATION)
    }
    assert set(info["randomization"]) == {
        "observation_noise",
        "observation_noise_relative",
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


def robot_links(model):
    names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, b) or "" for b in range(model.nbody)]
    return np.array([b for b in range(model.nbody) if names[b].startswith("robot0:") and model.body_mocapid[b] < 0])


def test_link_mass_scales_robot_links_with_inertia(tmp_path):
    env = envs.make_env("FetchPush-v4", randomization=spec_file(tmp_path, link_mass=1.2))
    model = model_of(env)
    mass, inertia = model.body_mass.copy(), model.body_inertia.copy()
    links = robot_links(model)
    others = np.setdiff1d(np.arange(model.nbody), links)
    assert links.size == 28 and body(model, "object0") in others and body(model, "robot0:mocap") in others
    for _ in range(2):  # the second episode restores nominal first: no compounding
        env.reset(seed=0)
        np.testing.assert_allclose(model.body_mass[links], 1.2 * mass[links])
        np.testing.assert_allclose(model.body_inertia[links], 1.2 * inertia[links])
        np.testing.assert_array_equal(model.body_mass[others], mass[others])

    cheetah = envs.make_env("HalfCheetah-v5", randomization=spec_file(tmp_path, link_mass=0.5))
    model = model_of(cheetah)
    mass = model.body_mass.copy()
    cheetah.reset(seed=0)
    np.testing.assert_allclose(model.body_mass, 0.5 * mass)  # every body with mass (the world has none)
    assert mass[1:].min() > 0


def test_object_damping_absolute_by_default_and_scaled(tmp_path):
    env = envs.make_env("FetchPush-v4", randomization=spec_file(tmp_path, object_damping=0.05))
    model = model_of(env)
    nominal = model.dof_damping.copy()
    free = slice(15, 21)  # object0's free joint: the last 6 dofs
    assert model.jnt_dofadr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, "object0:joint")] == 15
    np.testing.assert_array_equal(nominal[free], 0.01)
    env.reset(seed=0)
    np.testing.assert_array_equal(model.dof_damping[free], 0.05)
    np.testing.assert_array_equal(model.dof_damping[:15], nominal[:15])
    path = tmp_path / "scaled.toml"
    path.write_text('[object_damping]\ndistribution = "fixed"\nvalue = 3.0\nmode = "scaled"\n')
    scaled = envs.make_env("FetchPush-v4", randomization=path)
    for _ in range(2):
        scaled.reset(seed=0)
        np.testing.assert_allclose(model_of(scaled).dof_damping[free], 0.03)


def object_z(env):
    model, data = model_of(env), env.unwrapped.data
    return data.qpos[model.jnt_qposadr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, "object0:joint")] + 2]


def test_object_size_and_table_height_keep_the_object_resting_and_goals_unchanged(tmp_path):
    nominal_env = envs.make_env("FetchPush-v4")
    obs_nominal, _ = nominal_env.reset(seed=3)
    z_nominal = object_z(nominal_env)
    env = envs.make_env("FetchPush-v4", randomization=spec_file(tmp_path, object_size=1.2, table_height=1.02))
    model = model_of(env)
    geom = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "object0")
    table = body(model, "table0")
    size, rbound, aabb = model.geom_size[geom].copy(), model.geom_rbound[geom], model.geom_aabb[geom].copy()
    node = model.body_bvhadr[body(model, "object0")]
    np.testing.assert_array_equal(model.bvh_aabb[node], aabb)  # the body's one BVH node is the geom's box
    for _ in range(2):  # no compounding
        obs, _ = env.reset(seed=3)
        np.testing.assert_allclose(model.geom_size[geom], 1.2 * size)
        np.testing.assert_allclose(model.geom_rbound[geom], 1.2 * rbound)
        np.testing.assert_allclose(model.geom_aabb[geom], np.r_[aabb[:3], 1.2 * aabb[3:]])
        np.testing.assert_allclose(model.bvh_aabb[node], np.r_[aabb[:3], 1.2 * aabb[3:]])
        assert model.body_pos[table, 2] == 0.2 * 1.02
        # Start height: table top up 4 mm, half-height up 5 mm.
        np.testing.assert_allclose(object_z(env), z_nominal + 0.004 + 0.2 * 0.025, atol=1e-12)
    np.testing.assert_array_equal(obs[-3:], obs_nominal[-3:])  # the goal is unchanged
    start = object_z(env)
    for _ in range(10):
        env.step(np.zeros(4, dtype=np.float32))
    assert abs(object_z(env) - start) < 2e-4  # resting: neither sinking into nor dropping onto the table


def test_control_period_and_gravity_perturbation(tmp_path):
    env = envs.make_env(
        "FetchReach-v4", randomization=spec_file(tmp_path, control_period=1.5, gravity_perturbation=0.5)
    )
    model = model_of(env)
    timestep, gravity = model.opt.timestep, model.opt.gravity.copy()
    streams = env.get_wrapper_attr("streams")
    offsets = []
    for episode in range(300):
        env.reset(seed=episode if episode == 0 else None)
        assert model.opt.timestep == 1.5 * timestep
        np.testing.assert_array_equal(model.opt.gravity, gravity + streams.gravity_offset)  # not compounded
        offsets.append(streams.gravity_offset.copy())
    offsets = np.array(offsets)
    assert abs(offsets.std() - 0.5) < 0.05 and np.abs(offsets.mean(axis=0)).max() < 0.1
    assert len({tuple(o) for o in offsets}) == 300  # a new vector every episode


def test_grown_object_collides_where_its_new_size_reaches():
    """object_size must grow the bounds MuJoCo culls contacts with (bounding sphere, box and BVH), or a grown
    object passes through its neighbours. Neighbour: a body with two geoms (mid-phase uses the BVH)."""
    xml = """<mujoco><worldbody>
      <body name="object0"><freejoint/><geom name="object0" type="box" size="0.025 0.025 0.025"/></body>
      <body pos="0.09 0 0"><freejoint/><geom type="box" size="0.025 0.025 0.025"/>
        <geom type="box" pos="0.2 0 0" size="0.025 0.025 0.025"/></body>
    </worldbody></mujoco>"""
    model = mujoco.MjModel.from_xml_string(xml)
    data = mujoco.MjData(model)
    dynamics = ModelDynamics(model, {"object_size": Mode.SCALED})
    mujoco.mj_forward(model, data)
    assert data.ncon == 0  # 0.09 m apart: the nominal half-sizes (0.025 + 0.025) do not touch
    dynamics.apply({"object_size": 3.0})  # half-size 0.075: overlaps the neighbour by 0.01 m
    mujoco.mj_forward(model, data)
    assert data.ncon > 0
    assert dynamics.object_start_shift == pytest.approx(0.05)
    dynamics.apply({})
    mujoco.mj_forward(model, data)
    assert data.ncon == 0 and dynamics.object_start_shift == 0.0
