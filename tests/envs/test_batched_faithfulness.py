"""The batched backend against the reference gymnasium-robotics envs (SyncVectorEnv of make_env).

Same seed, same actions -> same episodes. Resets (goal, object, state, randomisation draws) are bit-identical.
Sparse rewards, success flags, time limits and autoresets agree exactly; observations, final observations
and dense rewards agree to OBS_ATOL (1e-5, in observation units: metres, radians, metres per control step).

Why not bit-identical: the batched engine does not carry the constraint solver's warm start across control
steps (mujoco.rollout neither returns qacc_warmstart nor can be handed it per substep), so each control step's
Newton solve starts from zero and lands within its 1e-8 tolerance of the reference's, ~1e-14 apart in state.
Over 110 steps that stays below ~1e-7 (FetchReach, contact-free, is bit-identical), except where the reference
is itself chaotic: on FetchSlide a 1e-13 relative perturbation of the reference's *own* warm start moves some
episodes (e.g. seed 4) by 0.1 within 110 steps. So the free-running test uses seeds where the reference is
stable, and `test_each_step_matches_from_synchronised_states` checks every step of a chaotic episode from the
reference's exact state (warm start included), where the two agree to STEP_ATOL.
"""

import mujoco
import numpy as np
import pytest

import envs
from envs.batched import FETCH_TASKS, BatchedFetchVecEnv, FetchTask
from envs.randomization import SPECS_DIR, Distribution, ParameterSpec, RandomizationSpec

OBS_ATOL = 1e-5
STEP_ATOL = 1e-9
STEPS = 110  # two full 50-step episodes (with their autoresets) and ten more steps
SIM2REAL = SPECS_DIR / "sim2real.toml"  # wide ranges of every parameter


def lockstep(task, randomization="none", profile=None, num_envs=2, seed=0, steps=STEPS, actions_seed=0):
    """Run batched and reference side by side; yield each step's (batched, reference) results."""
    batched = envs.make_vec(task, num_envs, seed, randomization, profile, backend="batched")
    reference = envs.make_vec(task, num_envs, seed, randomization, profile, backend="sync")
    assert isinstance(batched, BatchedFetchVecEnv)
    try:
        yield batched.reset(seed=seed), reference.reset(seed=seed)
        rng = np.random.default_rng(actions_seed)
        for _ in range(steps):
            action = rng.uniform(-1, 1, (num_envs, 4)).astype(np.float32)
            yield batched.step(action), reference.step(action)
    finally:
        batched.close()
        reference.close()


def assert_same_privileged(b_info, r_info):
    """clean_obs to OBS_ATOL, privileged_params exactly, with the same masks and dtypes."""
    for key, atol in (("clean_obs", OBS_ATOL), ("privileged_params", 0.0)):
        assert b_info[key].dtype == r_info[key].dtype == np.float32
        np.testing.assert_array_equal(b_info[f"_{key}"], r_info[f"_{key}"])
        np.testing.assert_allclose(b_info[key], r_info[key], rtol=0, atol=atol, err_msg=key)


def assert_same_step(b, r, dense):
    b_obs, b_rew, b_term, b_trunc, b_info = b
    r_obs, r_rew, r_term, r_trunc, r_info = r
    assert b_obs.dtype == np.float32 and b_obs.shape == r_obs.shape
    np.testing.assert_allclose(b_obs, r_obs, rtol=0, atol=OBS_ATOL)
    assert_same_privileged(b_info, r_info)
    if dense:
        np.testing.assert_allclose(b_rew, r_rew, rtol=0, atol=OBS_ATOL)
    else:
        np.testing.assert_array_equal(b_rew, r_rew)
    np.testing.assert_array_equal(b_term, r_term)
    np.testing.assert_array_equal(b_trunc, r_trunc)
    assert ("is_success" in b_info) == ("is_success" in r_info)  # absent when every env has just reset
    if "is_success" in r_info:
        np.testing.assert_array_equal(b_info["is_success"], r_info["is_success"])
        np.testing.assert_array_equal(b_info["_is_success"], r_info["_is_success"])
    assert ("final_obs" in b_info) == ("final_obs" in r_info)
    if "final_obs" in r_info:
        done = r_trunc | r_term
        np.testing.assert_array_equal(b_info["_final_obs"], r_info["_final_obs"])
        np.testing.assert_allclose(
            np.stack(b_info["final_obs"][done]), np.stack(r_info["final_obs"][done]), rtol=0, atol=OBS_ATOL
        )
        np.testing.assert_array_equal(b_info["final_info"]["is_success"], r_info["final_info"]["is_success"])
        assert_same_privileged(b_info["final_info"], r_info["final_info"])


@pytest.mark.parametrize("task", FETCH_TASKS)
def test_matches_reference_through_resets(task):
    dense = "Dense" in task
    steps = lockstep(task)
    (b_obs, b_info), (r_obs, r_info) = next(steps)
    np.testing.assert_array_equal(b_obs, r_obs)  # resets are exact: same goal, same object, same state
    assert b_info["randomization"] == r_info["randomization"] == {}
    resets = 0
    for b, r in steps:
        assert_same_step(b, r, dense)
        resets += int(r[3].sum())
    assert resets == 4  # both envs, twice


@pytest.mark.parametrize(
    "task, randomization, profile",
    [
        ("FetchPush-v4", "default", "laggy_noisy"),
        ("FetchPickAndPlace-v4", "default", "laggy_noisy"),
        ("FetchPush-v4", SIM2REAL, None),
        ("FetchPickAndPlace-v4", SIM2REAL, "latency_3"),
    ],
)
def test_matches_reference_with_randomization_noise_and_latency(task, randomization, profile):
    """Every parameter: per-episode dynamics (object size and table height moving the object's start, control
    period, gravity), per-step timestep jitter and object pushes, observation noise (absolute and relative to
    the running std) and bias, action noise, latency up to three steps. The same seeds draw the same values,
    the same noise and the same perturbations on both backends; clean_obs and privileged_params agree."""
    steps = lockstep(task, randomization=randomization, profile=profile, steps=60)
    (b_obs, b_info), (r_obs, r_info) = next(steps)
    np.testing.assert_array_equal(b_obs, r_obs)
    assert_same_privileged(b_info, r_info)
    assert set(b_info["randomization"]) == set(r_info["randomization"])
    for name, values in r_info["randomization"].items():
        np.testing.assert_array_equal(b_info["randomization"][name], values, err_msg=name)
    for b, r in steps:
        assert_same_step(b, r, dense=False)
        if "randomization" in r[4]:
            for name, values in r[4]["randomization"].items():
                np.testing.assert_array_equal(b[4]["randomization"][name], values, err_msg=name)


def test_models_match_reference_after_reset():
    """Each environment's model (every field a parameter changes) equals its reference twin's, exactly."""
    batched = envs.make_vec("FetchPickAndPlace-v4", 3, 9, SIM2REAL, backend="batched")
    reference = envs.make_vec("FetchPickAndPlace-v4", 3, 9, SIM2REAL, backend="sync")
    fields = ("body_mass", "body_inertia", "body_pos", "dof_damping", "geom_friction", "geom_size", "geom_rbound",
              "geom_aabb", "bvh_aabb", "actuator_gainprm", "actuator_biasprm")
    for seed in (9, None):  # a seeded reset, then the next episodes
        _, b_info = batched.reset(seed=seed)
        _, r_info = reference.reset(seed=seed)
        assert_same_privileged(b_info, r_info)
        for i, env in enumerate(reference.envs):
            model, twin = env.unwrapped.model, batched.engine.models[i]
            for field in fields:
                np.testing.assert_array_equal(getattr(twin, field), getattr(model, field), err_msg=field)
            assert twin.opt.timestep == model.opt.timestep
            np.testing.assert_array_equal(twin.opt.gravity, model.opt.gravity)
            assert batched.engine.dt[i] == env.unwrapped.dt
        # The object starts at the same height (resting on the moved table), with the same time.
        np.testing.assert_array_equal(
            batched.engine.qpos, np.array([env.unwrapped.data.qpos for env in reference.envs])
        )
    batched.close()
    reference.close()


def test_set_env_spec_sequence_matches_reference():
    """Equal seeds and equal set_env_spec calls (as ADR makes them, at different times per env): equal values
    and equal episodes on both backends."""
    spec = envs.load_spec("default")

    def pinned(names, end):
        """spec with `names` fixed at the low (end 0) or high (end 1) end of their ranges."""
        return RandomizationSpec(
            tuple(
                ParameterSpec(p.name, Distribution.FIXED, p.mode, value=p.range()[end]) if p.name in names else p
                for p in spec.parameters
            ),
            "pinned",
        )

    calls = {10: (0, pinned({"object_mass", "control_period"}, 0)), 30: (1, pinned({"object_push"}, 1))}
    batched = envs.make_vec("FetchPush-v4", 2, 0, spec, backend="batched")
    reference = envs.make_vec("FetchPush-v4", 2, 0, spec, backend="sync")
    np.testing.assert_array_equal(batched.reset(seed=0)[0], reference.reset(seed=0)[0])
    rng = np.random.default_rng(0)
    for t in range(STEPS):
        if t in calls:
            for vec in (batched, reference):
                envs.set_env_spec(vec, *calls[t])
        action = rng.uniform(-1, 1, (2, 4)).astype(np.float32)
        b, r = batched.step(action), reference.step(action)
        assert_same_step(b, r, dense=False)
        if t == 49:  # the episodes after the calls: env 0 pinned low, env 1 pushed at full speed
            values = r[4]["randomization"]
            assert values["object_mass"][0] == 0.7 and values["object_push"][1] == 0.05
            for name in values:
                np.testing.assert_array_equal(b[4]["randomization"][name], values[name], err_msg=name)
    batched.close()
    reference.close()


@pytest.mark.parametrize("task", ["FetchReach-v4", "FetchSlide-v4", "FetchPickAndPlace-v4"])
def test_each_step_matches_from_synchronised_states(task):
    """Before every step, give the batched engine the reference's exact simulator state: its full physics
    state, its solver warm start and the welded gripper pose it will put the mocap on. Then one control step
    must agree to STEP_ATOL, including through the chaotic stretch of seed 4 on FetchSlide and resets."""
    batched = envs.make_vec(task, 2, 3, backend="batched")
    reference = envs.make_vec(task, 2, 3, backend="sync")
    engine = batched.engine
    welded = engine.task.welded_body
    batched.reset(seed=3)
    reference.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(STEPS):
        for i, env in enumerate(reference.envs):
            model, data = env.unwrapped.model, env.unwrapped.data
            mujoco.mj_getState(model, data, engine.state[i], mujoco.mjtState.mjSTATE_FULLPHYSICS)
            engine.warmstart[i] = data.qacc_warmstart
            engine.welded_xpos[i] = data.xpos[welded]
            engine.welded_xquat[i] = data.xquat[welded]
        action = rng.uniform(-1, 1, (2, 4)).astype(np.float32)
        b, r = batched.step(action), reference.step(action)
        np.testing.assert_allclose(b[0], r[0], rtol=0, atol=STEP_ATOL)
        assert_same_step(b, r, dense=False)
    batched.close()
    reference.close()


def test_first_reset_without_seed_uses_constructor_seeds():
    batched = envs.make_vec("FetchPickAndPlace-v4", 3, seed=21, randomization="default", backend="batched")
    reference = envs.make_vec("FetchPickAndPlace-v4", 3, seed=21, randomization="default", backend="sync")
    np.testing.assert_array_equal(batched.reset()[0], reference.reset()[0])
    batched.close()
    reference.close()


def two_sample_ks(a, b):
    """Kolmogorov-Smirnov statistic of two 1-D samples."""
    grid = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / a.size
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / b.size
    return np.abs(cdf_a - cdf_b).max()


@pytest.mark.parametrize("task", ["FetchReach-v4", "FetchSlide-v4", "FetchPickAndPlace-v4"])
def test_goal_and_object_distributions_match_reference(task):
    """Goals and initial object positions: 400 batched resets (seeds 0..399) against 400 reference resets
    with other seeds (1000..1399), per coordinate; plus exact agreement for equal seeds."""
    n = 400
    fetch = FetchTask.from_gym(task)
    batched = BatchedFetchVecEnv(task, n, seed=0, spec=envs.load_spec("none"), nthread=1)
    obs, _ = batched.reset(seed=0)
    batched.close()
    layout = fetch.layout
    goal = layout.slices["desired_goal"]
    achieved = layout.slices["achieved_goal"]

    reference = envs.make_env(task)
    ref_obs = np.array([reference.reset(seed=1000 + i)[0] for i in range(n)])
    same_seed = np.array([reference.reset(seed=i)[0] for i in range(5)])
    np.testing.assert_array_equal(obs[:5], same_seed)

    # alpha = 0.001 critical value of the two-sample KS statistic: 1.95 * sqrt(2 / n).
    critical = 1.95 * np.sqrt(2 / n)
    fields = [goal] + ([achieved] if fetch.has_object else [])
    for field in fields:
        for k in range(3):
            a, b = obs[:, field][:, k], ref_obs[:, field][:, k]
            if np.ptp(b) == 0:  # the object starts on the table: a constant height
                np.testing.assert_array_equal(a, b)
                continue
            assert two_sample_ks(a, b) < critical, (field, k)
    # Ranges as gymnasium-robotics defines them.
    start = fetch.initial_gripper_xpos
    offsets = obs[:, goal] - (start + fetch.target_offset)
    assert np.abs(offsets[:, :2]).max() <= fetch.target_range + 1e-6
    if fetch.has_object:
        object_offset = np.linalg.norm(obs[:, achieved][:, :2] - start[:2], axis=1)
        assert object_offset.min() >= 0.1 - 1e-6
        assert np.abs(obs[:, achieved][:, :2] - start[:2]).max() <= fetch.obj_range + 1e-6
    if fetch.has_object and fetch.target_in_the_air:  # PickAndPlace: half the goals above the table
        lifted = obs[:, goal][:, 2] > fetch.height_offset + 1e-6
        assert 0.4 < lifted.mean() < 0.6
