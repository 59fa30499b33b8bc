"""The asymmetric critic's inputs (infos "clean_obs", "privileged_params", envs.privileged_names) and
per-environment specs (envs.set_env_spec) on the sync and batched backends."""

import numpy as np
import pytest
from spec_files import spec_file

import envs
from envs.randomization import PARAMETERS, Distribution, ParameterSpec, RandomizationSpec

BACKENDS = ["sync", "batched"]


def values_of(info, names):
    """(N, P) float32 of info["randomization"] in the order of names."""
    return np.stack([info["randomization"][n] for n in names], axis=1).astype(np.float32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_clean_obs_and_privileged_params_through_an_autoreset(backend):
    n = 2
    vec = envs.make_vec("FetchPush-v4", n, 3, "default", backend=backend)
    names = envs.privileged_names(vec)
    assert names == (vec.envs[0].active_parameters if backend == "sync" else vec.active_parameters)
    assert set(names) == set(PARAMETERS) - {"gripper_gain"}  # FetchPush has no gripper actuators
    assert names == tuple(n for n in envs.load_spec("default").names if n in names)  # in spec order
    obs, info = vec.reset(seed=3)
    dim = obs.shape[1]
    assert info["clean_obs"].shape == (n, dim) and info["clean_obs"].dtype == np.float32
    assert info["privileged_params"].shape == (n, len(names)) and info["privileged_params"].dtype == np.float32
    assert info["_clean_obs"].all() and info["_privileged_params"].all()
    episode = values_of(info, names)
    np.testing.assert_array_equal(info["privileged_params"], episode)
    rng = np.random.default_rng(0)
    for step in range(50):
        previous_episode = episode
        obs, _, _, truncated, info = vec.step(rng.uniform(-1, 1, (n, 4)).astype(np.float32))
        assert info["clean_obs"].shape == (n, dim) and info["_clean_obs"].all()
        noise = obs - info["clean_obs"]
        assert np.abs(noise[:, :-3]).max() > 0 and np.all(noise[:, -3:] == 0)  # noisy, except the goal
        if step < 49:
            np.testing.assert_array_equal(info["privileged_params"], episode)
    assert truncated.all()
    final = info["final_info"]
    assert final["_clean_obs"].all() and final["_privileged_params"].all()
    np.testing.assert_array_equal(final["privileged_params"], previous_episode)  # the ended episode's values
    final_obs = np.stack(info["final_obs"])
    assert 0 < np.abs(final_obs - final["clean_obs"])[:, :-3].max() < 0.1  # the clean twin of final_obs
    episode = values_of(info, names)  # the new episode's, drawn at the autoreset
    assert not np.array_equal(episode, previous_episode)
    np.testing.assert_array_equal(info["privileged_params"], episode)
    assert not np.array_equal(info["clean_obs"], final["clean_obs"])
    vec.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_clean_obs_equals_obs_without_noise_and_empty_privileged_params(backend):
    vec = envs.make_vec("FetchReach-v4", 3, 0, "none", backend=backend)
    assert envs.privileged_names(vec) == ()
    obs, info = vec.reset(seed=0)
    np.testing.assert_array_equal(info["clean_obs"], obs)
    assert info["privileged_params"].shape == (3, 0)
    for _ in range(50):
        obs, *_, info = vec.step(np.full((3, 4), 0.3, dtype=np.float32))
        np.testing.assert_array_equal(info["clean_obs"], obs)
    np.testing.assert_array_equal(info["final_info"]["clean_obs"], np.stack(info["final_obs"]))
    assert info["final_info"]["privileged_params"].shape == (3, 0)
    vec.close()


def staggered_end(backend):
    """Env 0 restarts alone after 10 steps, so at step 50 only env 1 ends. Returns that step's infos."""
    vec = envs.make_vec("FetchReach-v4", 2, 0, "default", backend=backend)
    vec.reset(seed=0)
    action = np.full((2, 4), 0.2, dtype=np.float32)
    for step in range(50):
        if step == 10:  # a sub-env's own reset, without reseeding
            vec.envs[0].reset() if backend == "sync" else vec._reset_envs(np.array([0]), [None])
        *_, truncated, info = vec.step(action)
    vec.close()
    np.testing.assert_array_equal(truncated, [False, True])
    return info


def test_final_info_rows_follow_the_mask_when_some_envs_end():
    """As SyncVectorEnv builds them: final_info rows of envs that did not end are zeros under a False mask;
    the top-level clean_obs / privileged_params hold every env's current values."""
    sync, batched = staggered_end("sync"), staggered_end("batched")
    for info in (sync, batched):
        final = info["final_info"]
        for key in ("clean_obs", "privileged_params", "is_success"):
            np.testing.assert_array_equal(final[f"_{key}"], [False, True])
        assert not final["clean_obs"][0].any() and not final["privileged_params"][0].any()
        assert final["clean_obs"][1].any() and final["privileged_params"][1].any()
        assert info["_clean_obs"].all() and info["_privileged_params"].all()
        np.testing.assert_array_equal(info["_randomization"], [False, True])
    for key in ("clean_obs", "privileged_params"):
        np.testing.assert_array_equal(batched[key], sync[key])
        np.testing.assert_array_equal(batched["final_info"][key], sync["final_info"][key])


def widened(spec, name, low, high):
    """spec with `name` drawn uniformly from [low, high]."""
    params = tuple(
        ParameterSpec(name, Distribution.UNIFORM, p.mode, low=low, high=high) if p.name == name else p
        for p in spec.parameters
    )
    return RandomizationSpec(params, f"{spec.source} widened")


def draws_after_set_env_spec(backend, tmp_path, episodes=3):
    """link_mass draws (episodes, 3) of FetchReach when env 1's range widens after the first episode."""
    spec = envs.load_spec(spec_file(tmp_path, link_mass=1.0, action_latency=1))
    vec = envs.make_vec("FetchReach-v4", 3, 7, spec, backend=backend)
    _, info = vec.reset(seed=7)
    draws = [info["randomization"]["link_mass"]]
    envs.set_env_spec(vec, 1, widened(spec, "link_mass", 0.5, 2.0))
    for _ in range(episodes - 1):
        _, info = vec.reset()  # next episodes, no reseeding
        draws.append(info["randomization"]["link_mass"])
    vec.close()
    return np.array(draws)


def test_set_env_spec_changes_only_that_env_reproducibly_on_both_backends(tmp_path):
    sync = draws_after_set_env_spec("sync", tmp_path)
    batched = draws_after_set_env_spec("batched", tmp_path)
    np.testing.assert_array_equal(sync, batched)
    np.testing.assert_array_equal(sync, draws_after_set_env_spec("sync", tmp_path))
    np.testing.assert_array_equal(sync[:, [0, 2]], 1.0)
    assert sync[0, 1] == 1.0 and np.all((sync[1:, 1] >= 0.5) & (sync[1:, 1] <= 2.0)) and sync[1, 1] != sync[2, 1]


def test_set_env_spec_rejects_other_parameters_and_the_subprocess_backend(tmp_path):
    spec = envs.load_spec("default")
    vec = envs.make_vec("FetchReach-v4", 2, 0, spec, backend="batched")
    missing = RandomizationSpec(tuple(p for p in spec.parameters if p.name != "link_mass"), "short")
    with pytest.raises(ValueError, match=r"missing: \['link_mass'\].*Fix: give a spec with the same parameters"):
        envs.set_env_spec(vec, 0, missing)
    with pytest.raises(ValueError, match="out of range"):
        envs.set_env_spec(vec, 2, spec)
    # Parameters inactive on FetchReach may be left out; they are dropped anyway.
    active = RandomizationSpec(tuple(p for p in spec.parameters if p.name in vec.active_parameters), "active")
    envs.set_env_spec(vec, 0, active)
    vec.close()
    sync = envs.make_vec("FetchReach-v4", 1, 0, spec_file(tmp_path, link_mass=1.0), backend="sync")
    with pytest.raises(ValueError, match=r"not in it: \['object_mass'\]"):
        envs.set_env_spec(sync, 0, envs.load_spec(spec_file(tmp_path, link_mass=1.0, object_mass=2.0)))
    sync.close()
    subprocess = envs.make_vec("FetchReach-v4", 1, 0, spec_file(tmp_path, link_mass=1.0), backend="subprocess")
    assert envs.privileged_names(subprocess) == ("link_mass",)
    with pytest.raises(ValueError, match="use backend sync or batched"):
        envs.set_env_spec(subprocess, 0, envs.load_spec(spec_file(tmp_path, link_mass=1.0)))
    subprocess.close()
