"""Per-step perturbations on both backends: control period and timestep jitter (simulated time per control
step), object pushes (velocity kicks at the expected rate), relative observation noise (std = value x each
feature's running std)."""

import mujoco
import numpy as np
import pytest
from spec_files import spec_file

import envs

NOMINAL_DT = 20 * 0.002  # Fetch: 20 substeps of 2 ms per control step


def step_durations(task, spec, backend, num_envs, steps, seed=0):
    """(steps, num_envs) simulated seconds of each control step: differences of data.time (sync) or of the
    batched state's time (mjSTATE_TIME, the first component of a full-physics state)."""
    vec = envs.make_vec(task, num_envs, seed, spec, backend=backend)
    vec.reset(seed=seed)

    def times():
        if backend == "batched":
            return vec.engine.state[:, 0].copy()
        return np.array([env.unwrapped.data.time for env in vec.envs])

    rng = np.random.default_rng(0)
    trace = [times()]
    for _ in range(steps):
        vec.step(rng.uniform(-1, 1, (num_envs, 4)).astype(np.float32))
        trace.append(times())
    vec.close()
    return np.diff(np.array(trace), axis=0)


@pytest.mark.parametrize("backend", ["sync", "batched"])
def test_control_period_scales_the_simulated_time_per_step(tmp_path, backend):
    durations = step_durations("FetchReach-v4", spec_file(tmp_path, control_period=1.5), backend, 2, 20)
    np.testing.assert_allclose(durations, 1.5 * NOMINAL_DT, rtol=1e-9)


@pytest.mark.parametrize("backend", ["sync", "batched"])
def test_timestep_jitter_adds_an_exponential_delay_every_step(tmp_path, backend):
    mean = 0.004
    spec = spec_file(tmp_path, control_period=1.0, timestep_jitter=mean)
    durations = step_durations("FetchReach-v4", spec, backend, 8, 49)  # 392 delays, no episode ends
    delays = durations - NOMINAL_DT
    assert delays.min() > 0 and len(np.unique(delays.round(12))) > 350
    assert abs(delays.mean() - mean) < 0.15 * mean  # 3.4 standard errors of an Exp(mean) sample mean
    assert abs(np.median(delays) - mean * np.log(2)) < 0.2 * mean  # exponential, not e.g. uniform


def test_timestep_jitter_and_control_period_agree_across_backends(tmp_path):
    spec = spec_file(tmp_path, control_period=1.1, timestep_jitter=0.002)
    sync = step_durations("FetchPush-v4", spec, "sync", 2, 60, seed=4)  # through one autoreset
    batched = step_durations("FetchPush-v4", spec, "batched", 2, 60, seed=4)
    np.testing.assert_allclose(batched, sync, rtol=0, atol=1e-12)


def push_kicks(vec, backend, steps):
    """(steps, N, 2) kick added to the object's x, y velocity before each step's physics: the velocity the
    physics starts from minus the velocity the previous step ended with."""
    model = vec.engine.task.model if backend == "batched" else vec.envs[0].unwrapped.model
    joint = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, "object0:joint")
    dofs = model.jnt_dofadr[joint] + np.arange(2)
    starts = []
    if backend == "batched":
        engine = vec.engine
        physics = engine.step

        def recording_step(*args):
            starts.append(engine.qvel[:, dofs].copy())
            physics(*args)

        engine.step = recording_step

        def velocity():
            return engine.qvel[:, dofs].copy()
    else:
        for env in vec.envs:
            fetch = env.unwrapped
            physics = fetch._mujoco_step

            def recording_step(action, fetch=fetch, physics=physics):
                starts.append(fetch.data.qvel[dofs].copy())
                physics(action)

            fetch._mujoco_step = recording_step

        def velocity():
            return np.array([env.unwrapped.data.qvel[dofs] for env in vec.envs])

    kicks = []
    vec.reset(seed=0)
    for _ in range(steps):
        before = velocity()
        starts.clear()
        vec.step(np.zeros((vec.num_envs, 4), dtype=np.float32))
        kicks.append(np.array(starts).reshape(vec.num_envs, 2) - before)
    return np.array(kicks)


@pytest.mark.parametrize("backend", ["sync", "batched"])
def test_object_push_kicks_at_the_expected_rate_and_speed(tmp_path, backend):
    speed, probability, steps = 0.3, 0.2, 49  # no episode ends
    spec = spec_file(tmp_path, object_push=speed, object_push_probability=probability)
    vec = envs.make_vec("FetchPush-v4", 4, 0, spec, backend=backend)
    kicks = push_kicks(vec, backend, steps)
    vec.close()
    magnitude = np.linalg.norm(kicks, axis=-1)
    kicked = magnitude > 1e-9
    np.testing.assert_allclose(magnitude[kicked], speed, rtol=1e-9)
    rate = kicked.mean()  # 196 Bernoulli(0.2) trials: std 0.029
    assert abs(rate - probability) < 0.09, rate
    angles = np.arctan2(kicks[kicked][:, 1], kicks[kicked][:, 0])
    assert np.ptp(angles) > np.pi  # directions spread around the circle


def test_object_push_is_the_same_on_both_backends(tmp_path):
    spec = spec_file(tmp_path, object_push=0.3, object_push_probability=0.2)
    sync = envs.make_vec("FetchPush-v4", 2, 0, spec, backend="sync")
    batched = envs.make_vec("FetchPush-v4", 2, 0, spec, backend="batched")
    np.testing.assert_allclose(push_kicks(batched, "batched", 30), push_kicks(sync, "sync", 30), atol=1e-9)
    sync.close()
    batched.close()


@pytest.mark.parametrize("backend", ["sync", "batched"])
def test_relative_observation_noise_follows_each_features_running_std(tmp_path, backend):
    value, n, steps = 0.2, 4, 49
    vec = envs.make_vec("FetchReach-v4", n, 0, spec_file(tmp_path, observation_noise_relative=value), backend=backend)
    obs, info = vec.reset(seed=0)
    goal = vec.single_observation_space.shape[0] - 3  # desired_goal: the last three values, never corrupted
    clean_history = [info["clean_obs"]]
    ratios = []
    rng = np.random.default_rng(0)
    for _ in range(steps):
        obs, *_, info = vec.step(rng.uniform(-1, 1, (n, 4)).astype(np.float32))
        clean = info["clean_obs"]
        clean_history.append(clean)
        running_std = np.array(clean_history, dtype=np.float64).std(axis=0)  # population std so far, per env
        noise = (obs - clean).astype(np.float64)
        np.testing.assert_array_equal(noise[:, goal:], 0.0)
        moving = running_std[:, :goal] > 1e-4
        ratios.append(noise[:, :goal][moving] / (value * running_std[:, :goal][moving]))
    vec.close()
    ratios = np.concatenate(ratios)
    assert ratios.size > 1000
    assert abs(ratios.std() - 1.0) < 0.08 and abs(ratios.mean()) < 0.08  # unit Gaussian after scaling
