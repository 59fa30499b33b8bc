"""The per-step corruption core on its own: the latency ring buffer against hand-worked sequences, clipping of
noisy actions, and N envs corrupted together drawing exactly what N separate one-env cores draw (which is why
the gym wrapper, N = 1, and the batched backend give the same streams)."""

import gymnasium as gym
import numpy as np

from envs.corruption import RandomizationStreams, StepCorruption
from envs.randomization import load_spec

OBS_DIM = 5
ACTIONS = gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)


def spec(tmp_path, name: str, **fixed: float):
    path = tmp_path / f"{name}.toml"
    path.write_text("".join(f'[{k}]\ndistribution = "fixed"\nvalue = {v}\n' for k, v in fixed.items()))
    return load_spec(path)


def streams(spec_, seed: int) -> RandomizationStreams:
    mask = np.ones(OBS_DIM, dtype=np.float32)
    mask[-1] = 0.0  # a field never corrupted (the commanded goal, say)
    return RandomizationStreams(spec_, mask, seed)


def test_latency_executes_each_envs_action_from_k_steps_earlier(tmp_path):
    # env 0: no latency, env 1: one step, env 2: three steps; the queue starts at the neutral command (0, 0).
    specs = [spec(tmp_path, f"l{k}", action_latency=k) for k in (0, 1, 3)]
    core = StepCorruption([streams(s, seed=i) for i, s in enumerate(specs)], ACTIONS, OBS_DIM)
    for i in range(3):
        core.new_episode(i, seed=i)
    executed = []
    for t in range(1, 6):
        sent = np.full((3, 2), t / 8, dtype=np.float32)  # exact in float32
        executed.append((core.actions(sent)[:, 0] * 8).tolist())
    assert [row[0] for row in executed] == [1, 2, 3, 4, 5]  # in eighths
    assert [row[1] for row in executed] == [0, 1, 2, 3, 4]
    assert [row[2] for row in executed] == [0, 0, 0, 1, 2]
    core.new_episode(2, seed=None)  # a new episode starts again from the neutral command
    assert core.actions(np.full((3, 2), 0.9, dtype=np.float32))[2, 0] == 0.0


def test_noisy_actions_stay_within_the_bounds(tmp_path):
    core = StepCorruption([streams(spec(tmp_path, "n", action_noise=5.0), seed=0)], ACTIONS, OBS_DIM)
    core.new_episode(0, seed=0)
    out = np.concatenate([core.actions(np.full((1, 2), 0.95, dtype=np.float32)) for _ in range(200)])
    assert out.min() == -1.0 and out.max() == 1.0  # std 5: many draws clipped at both bounds
    assert out.dtype == np.float32


def test_n_envs_together_draw_what_n_one_env_cores_draw(tmp_path):
    noisy = spec(tmp_path, "all", action_noise=0.1, observation_noise=0.02, observation_bias=0.05,
                 observation_noise_relative=0.5, action_latency=1, timestep_jitter=0.003)
    together = StepCorruption([streams(noisy, seed=10 + i) for i in range(3)], ACTIONS, OBS_DIM)
    alone = [StepCorruption([streams(noisy, seed=10 + i)], ACTIONS, OBS_DIM) for i in range(3)]
    for i in range(3):
        assert together.new_episode(i, seed=10 + i) == alone[i].new_episode(0, seed=10 + i)
    rng = np.random.default_rng(0)
    everyone = np.arange(3)
    for _ in range(20):
        sent = rng.uniform(-1, 1, (3, 2)).astype(np.float32)
        clean = rng.normal(size=(3, OBS_DIM)).astype(np.float32)
        batch_actions = together.actions(sent.copy())
        batch_delays = dict(together.delays())
        batch_obs = clean.copy()
        together.observe(batch_obs, everyone)
        for i, core in enumerate(alone):
            np.testing.assert_array_equal(core.actions(sent[i : i + 1].copy())[0], batch_actions[i])
            assert dict(core.delays()) == {0: batch_delays[i]}
            obs = clean[i : i + 1].copy()
            core.observe(obs, np.zeros(1, dtype=np.intp))
            np.testing.assert_array_equal(obs[0], batch_obs[i])
    assert np.all(batch_obs[:, -1] == clean[:, -1])  # the masked field is never corrupted
