"""Throughput in one run: raw env steps/s per backend against the physics ceiling, PPO training steps/s per
backend against Stable-Baselines3, where the time goes, and how the batched backend scales.

- Raw env throughput: random actions, no randomisation, `--num-envs` envs: the batched backend, the reference
  gymnasium-robotics envs in a for-loop (SyncVectorEnv) and in subprocesses (AsyncVectorEnv).
- Physics ceiling: raw ``mj_step`` on the same MuJoCo model under random actions, one process per core,
  converted to control steps (each control step is ``n_substeps`` physics steps).
- PPO: robopg (batched, sync, subprocess) and SB3 get the same environment (robopg's flat-observation task, no
  randomisation), the same network (64-64 tanh actor and critic), rollout length, environment count, epochs,
  minibatch size and torch thread count.
- Breakdown of one PPO iteration on the batched backend: physics (mujoco.rollout), kinematics readouts, the
  rest of env.step (observations, rewards, resets), policy inference and storage (rest of collect), update.
- Scaling of the batched backend: steps/s against env count and physics threads; memory per env.

    python scripts/bench_throughput.py                      # writes docs/bench_throughput.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import envs
from envs.batched import BatchedFetchVecEnv
from robopg.config import EnvConfig, PolicyConfig, PPOConfig, RunConfig, TrainConfig, resolve_config
from robopg.runners import Trainer


# ----- raw env throughput -----------------------------------------------------------------------------------
def env_steps_per_second(vec: Any, seconds: float) -> float:
    """Env steps per second of ``vec`` under uniform random actions (after a reset and a short warm-up)."""
    vec.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (64, vec.num_envs, 4)).astype(np.float32)
    for a in actions[:2]:
        vec.step(a)
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or calls < 3:
        vec.step(actions[calls % len(actions)])
        calls += 1
    return calls * vec.num_envs / (time.perf_counter() - t0)


def raw_throughput(task: str, num_envs: int, seconds: float, rounds: int) -> tuple[dict[str, float], float, int]:
    """Best-of-rounds env steps/s per backend and the physics ceiling, measured in alternation so that load
    from other processes on the machine drifts into all of them alike. Returns (rates, ceiling, n_substeps)."""
    cores = os.cpu_count() or 1
    vecs = {b: envs.make_vec(task, num_envs, 0, "none", backend=b) for b in ("batched", "sync", "subprocess")}
    best = dict.fromkeys(vecs, 0.0)
    ceiling = 0.0
    with mp.get_context("spawn").Pool(cores) as pool:
        for _ in range(rounds):
            rates = pool.map(_mj_step_worker, [(task, seconds)] * cores)
            ceiling = max(ceiling, sum(rates))
            for name, vec in vecs.items():
                best[name] = max(best[name], env_steps_per_second(vec, seconds))
    for vec in vecs.values():
        vec.close()
    env = envs.make_env(task, seed=0)
    substeps = int(getattr(env.unwrapped, "n_substeps", 1))
    env.close()
    return best, ceiling / substeps, substeps


def _mj_step_worker(args: tuple[str, float]) -> float:
    """Physics steps per second of raw mj_step on the task's model for ``seconds`` in this process.

    The arm follows random actions as in an episode: every n_substeps steps the mocap is put on the welded
    gripper body plus a random displacement (what the envs do between mj_step calls, a few microseconds
    against ~0.7 ms of physics), and the state returns to the start every 50 control steps. Stepping from a
    state whose mocap sits elsewhere would measure a different, contact-heavy simulation.
    """
    task, seconds = args
    import mujoco

    from envs.batched import FetchTask

    fetch = FetchTask.from_gym(task)
    model = fetch.model
    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        mujoco.mj_setState(model, data, fetch.initial_state, spec)
        mujoco.mj_forward(model, data)
        for _ in range(50):
            data.mocap_pos[fetch.mocap_id] = data.xpos[fetch.welded_body] + rng.uniform(-0.05, 0.05, 3)
            data.mocap_quat[fetch.mocap_id] = data.xquat[fetch.welded_body] + (1.0, 0.0, 1.0, 0.0)
            mujoco.mj_step(model, data, nstep=fetch.n_substeps)
        n += 50 * fetch.n_substeps
    return n / (time.perf_counter() - t0)


# ----- PPO training throughput ------------------------------------------------------------------------------
class TimedVecEnv:
    """Forwards to a vector env and adds up the seconds spent in step()."""

    def __init__(self, env: Any):
        self.env, self.step_seconds = env, 0.0

    def step(self, actions: np.ndarray) -> Any:
        t0 = time.perf_counter()
        out = self.env.step(actions)
        self.step_seconds += time.perf_counter() - t0
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)


def robopg_training(task: str, num_envs: int, rollout: int, steps: int, backend: str) -> dict[str, float]:
    """Steps per second of robopg PPO (64-64 networks, 10 epochs x 4 minibatches), and the seconds per iteration
    spent in each part."""
    cfg = TrainConfig(
        env=EnvConfig(task=task, num_envs=num_envs, randomization="none", backend=backend),
        policy=PolicyConfig(hidden_sizes=(64, 64)),
        ppo=PPOConfig(rollout_steps=rollout, epochs=10, minibatches=4),
        run=RunConfig(total_steps=steps, checkpoint_every=0),
    )
    return timed_training(cfg, f"robopg_{backend}")


def preset_config(preset: str, num_envs: int | None, steps: int) -> TrainConfig:
    """The preset's PPO settings (network, rollout, epochs, minibatches, env count unless given) on its task
    without randomisation or reward shaping: what the physics ceiling and SB3 can be compared with."""
    overrides: dict[str, dict[str, Any]] = {
        "env": {"randomization": "none", "reward": "task", "obs_history": 1, "action_history": 0},
        "curriculum": {"enabled": False},
        "run": {"total_steps": steps, "checkpoint_every": 0},
    }
    if num_envs is not None:
        overrides["env"]["num_envs"] = num_envs
    return resolve_config(preset, None, overrides)


def timed_training(cfg: TrainConfig, name: str) -> dict[str, float]:
    """Train ``cfg`` and return its steps/s and the seconds per iteration spent in each part."""
    run_dir = Path(f"runs/bench_throughput/{name}")
    shutil.rmtree(run_dir, ignore_errors=True)  # metrics.csv appends; keep only this run's iterations
    timed: list[TimedVecEnv] = []
    make_vec = envs.make_vec

    def make_timed(*args: Any, **kwargs: Any) -> TimedVecEnv:
        timed.append(TimedVecEnv(make_vec(*args, **kwargs)))
        return timed[-1]

    envs.make_vec = make_timed
    try:
        trainer = Trainer(cfg, run_dir, progress=False)
        t0 = time.perf_counter()
        trainer.train()
        elapsed = time.perf_counter() - t0
    finally:
        envs.make_vec = make_vec
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    metrics = np.array([[float(x) for x in row.split(",")] for row in rows[1:]])
    iterations = len(metrics)
    collect = metrics[:, header.index("collect_seconds")].sum() / iterations
    update = metrics[:, header.index("update_seconds")].sum() / iterations
    env = timed[0]
    out = {
        "steps_per_second": trainer.global_step / elapsed,
        "iteration_seconds": elapsed / iterations,
        "collect_seconds": collect,
        "update_seconds": update,
        "env_step_seconds": env.step_seconds / iterations,
        "policy_and_storage_seconds": collect - env.step_seconds / iterations,
    }
    inner = env.env
    if isinstance(inner, BatchedFetchVecEnv):
        physics = inner.engine.timings["physics"] / iterations
        kinematics = inner.engine.timings["kinematics"] / iterations
        out.update(
            physics_seconds=physics,
            kinematics_seconds=kinematics,
            observation_reward_reset_seconds=env.step_seconds / iterations - physics - kinematics,
        )
    return out


def sb3_steps_per_second(task: str, num_envs: int, rollout: int, steps: int, hidden: tuple[int, ...] = (64, 64),
                         epochs: int = 10, minibatches: int = 4) -> float:
    """SB3 PPO with the same env count, rollout, network (tanh), epochs and minibatch count as robopg's."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    vec = DummyVecEnv([lambda i=i: envs.make_env(task, seed=i) for i in range(num_envs)])
    model = PPO(
        "MlpPolicy", vec, n_steps=rollout, batch_size=rollout * num_envs // minibatches, n_epochs=epochs, seed=0,
        verbose=0, policy_kwargs={"net_arch": {"pi": list(hidden), "vf": list(hidden)}, "activation_fn": torch.nn.Tanh},
        device="cpu",
    )
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps)
    return model.num_timesteps / (time.perf_counter() - t0)


# ----- scaling and memory of the batched backend ------------------------------------------------------------
def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _memory_worker(args: tuple[str, int, str]) -> float:
    """Resident bytes per env added by a batched vector env of num_envs envs (measured in a fresh process)."""
    task, num_envs, randomization = args
    small = envs.make_vec(task, 1, 0, randomization, backend="batched")
    small.reset(seed=0)
    before = _rss_bytes()
    vec = envs.make_vec(task, num_envs + 1, 0, randomization, backend="batched")
    vec.reset(seed=0)
    vec.step(np.zeros((num_envs + 1, 4), dtype=np.float32))
    return (_rss_bytes() - before) / num_envs


def memory_per_env(task: str, num_envs: int) -> dict[str, float]:
    with mp.get_context("spawn").Pool(1) as pool:
        return {
            randomization: pool.apply(_memory_worker, ((task, num_envs, randomization),)) / 2**20
            for randomization in ("none", "default")
        }


def _peak_rss_worker(args: tuple[str, int, str]) -> float:
    """Peak resident MiB of a fresh process holding a batched vector env of num_envs envs, each with its own
    randomised model (spec), after a reset and 50 steps."""
    import resource

    task, num_envs, randomization = args
    vec = envs.make_vec(task, num_envs, 0, randomization, backend="batched")
    vec.reset(seed=0)
    for _ in range(50):
        vec.step(np.zeros((num_envs, 4), dtype=np.float32))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def peak_rss_mib(task: str, num_envs: int, randomization: str) -> float:
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(_peak_rss_worker, ((task, num_envs, randomization),))


PHASES = ("physics_seconds", "kinematics_seconds", "observation_reward_reset_seconds", "policy_and_storage_seconds",
          "update_seconds", "iteration_seconds")


def preset_comparison(preset: str, steps: int, ceiling: float) -> dict[str, Any]:
    """robopg and SB3 end to end with the preset's settings (env count, rollout, network, epochs, minibatches)."""
    cfg = preset_config(preset, None, steps)
    ppo = cfg.ppo
    robopg = timed_training(cfg, f"preset_{preset}")
    sb3 = sb3_steps_per_second(cfg.env.task, cfg.env.num_envs, ppo.rollout_steps, steps, cfg.policy.hidden_sizes,
                               ppo.epochs, ppo.minibatches)
    return {
        "name": preset, "num_envs": cfg.env.num_envs, "rollout_steps": ppo.rollout_steps,
        "hidden_sizes": list(cfg.policy.hidden_sizes), "epochs": ppo.epochs, "minibatches": ppo.minibatches,
        "robopg_steps_per_second": round(robopg["steps_per_second"], 1), "sb3_steps_per_second": round(sb3, 1),
        "ratio_over_sb3": round(robopg["steps_per_second"] / sb3, 2),
        "ratio_over_physics_ceiling": round(robopg["steps_per_second"] / ceiling, 2),
        "breakdown_seconds": {k: round(v, 4) for k, v in robopg.items() if k != "steps_per_second"},
    }


def preset_phases(preset: str, env_counts: list[int], iterations: int) -> list[dict[str, float]]:
    """Where one PPO iteration of the preset's settings goes, per env count (no randomisation): physics,
    kinematics readouts, the rest of env.step, policy inference + storage, the update."""
    rows = []
    for n in env_counts:
        cfg = preset_config(preset, n, steps=1)
        cfg = cfg.replace({"run": {"total_steps": iterations * cfg.batch_size}})
        row = timed_training(cfg, f"phases_{n}")
        rows.append({"num_envs": n, **row})
    return rows


def scaling(task: str, env_counts: list[int], threads: list[int], seconds: float) -> list[dict[str, float]]:
    spec = envs.load_spec("none")
    rows = []
    for n in env_counts:
        for t in threads:
            vec = BatchedFetchVecEnv(task, n, 0, spec, nthread=t)
            rows.append({"num_envs": n, "threads": t, "steps_per_second": env_steps_per_second(vec, seconds)})
            vec.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="FetchPush-v4")
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--rollout-steps", type=int, default=64)
    parser.add_argument("--steps", type=int, default=32_768, help="training steps per trainer")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--raw-seconds", type=float, default=3.0, help="seconds per raw-throughput measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of raw measurements (best kept)")
    parser.add_argument("--scaling-envs", type=int, nargs="+", default=[1, 4, 16, 64, 256, 1024])
    parser.add_argument("--preset", default="fetch-push", help="preset whose PPO settings are measured end to end")
    parser.add_argument("--preset-steps", type=int, default=65_536, help="training steps of the preset run (and SB3's)")
    parser.add_argument("--phase-envs", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    parser.add_argument("--phase-iterations", type=int, default=4, help="PPO iterations per env count of the table")
    parser.add_argument("--rss-envs", type=int, default=256, help="env count of the peak-memory measurement")
    parser.add_argument("--json", type=Path, default=Path("docs/bench_throughput.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    cores = os.cpu_count() or 1

    raw, ceiling, substeps = raw_throughput(args.task, args.num_envs, args.raw_seconds, args.rounds)
    training = {
        f"robopg_{backend}": robopg_training(args.task, args.num_envs, args.rollout_steps, args.steps, backend)
        for backend in ("batched", "sync", "subprocess")
    }
    sb3 = sb3_steps_per_second(args.task, args.num_envs, args.rollout_steps, args.steps)
    threads = sorted({1, cores})
    scale = scaling(args.task, args.scaling_envs, threads, seconds=min(args.raw_seconds, 2.0))
    memory = memory_per_env(args.task, 64)
    preset = preset_comparison(args.preset, args.preset_steps, ceiling)
    phases = preset_phases(args.preset, args.phase_envs, args.phase_iterations)
    rss = {spec: round(peak_rss_mib(args.task, args.rss_envs, spec), 1) for spec in ("none", "sim2real")}

    ppo = {name: row["steps_per_second"] for name, row in training.items()} | {"sb3": sb3}
    result = {
        "command": f"python scripts/bench_throughput.py --task {args.task} --num-envs {args.num_envs} "
        f"--rollout-steps {args.rollout_steps} --steps {args.steps} --raw-seconds {args.raw_seconds} "
        f"--rounds {args.rounds} --preset {args.preset} --preset-steps {args.preset_steps} "
        f"--phase-envs {' '.join(map(str, args.phase_envs))} --phase-iterations {args.phase_iterations} "
        f"--rss-envs {args.rss_envs}",
        "machine": f"{platform.machine()}, {cores} cores",
        "task": args.task,
        "num_envs": args.num_envs,
        "n_substeps": substeps,
        "physics_ceiling_control_steps_per_second": round(ceiling, 1),
        "raw_env_steps_per_second": {k: round(v, 1) for k, v in raw.items()},
        "raw_ratio_over_physics_ceiling": {k: round(v / ceiling, 2) for k, v in raw.items()},
        "raw_ratio_batched_over": {k: round(raw["batched"] / raw[k], 2) for k in ("sync", "subprocess")},
        "ppo_steps_per_second": {k: round(v, 1) for k, v in ppo.items()},
        "ppo_ratio_over_sb3": {k: round(v / sb3, 2) for k, v in ppo.items() if k != "sb3"},
        "ppo_ratio_over_physics_ceiling": {k: round(v / ceiling, 2) for k, v in ppo.items()},
        "ppo_iteration_breakdown_seconds": {
            k: {m: round(v, 4) for m, v in row.items() if m != "steps_per_second"} for k, row in training.items()
        },
        "batched_scaling": [{**row, "steps_per_second": round(row["steps_per_second"], 1)} for row in scale],
        "batched_memory_mib_per_env": {k: round(v, 2) for k, v in memory.items()},
        "preset": preset,
        "preset_phases_seconds_per_iteration": [{k: round(v, 4) for k, v in row.items()} for row in phases],
        f"peak_rss_mib_{args.rss_envs}_envs": rss,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))

    print(f"physics ceiling (raw mj_step, {cores} processes, random actions): {ceiling:.0f} control steps/s")
    print(f"{'raw env, ' + str(args.num_envs) + ' envs':<32} {'steps/s':>9} {'of ceiling':>11}")
    for k, v in raw.items():
        print(f"{k:<32} {v:>9.0f} {100 * v / ceiling:>10.0f}%")
    print(f"{'PPO training, ' + args.task:<32} {'steps/s':>9} {'vs SB3':>11}")
    for k, v in ppo.items():
        print(f"{k:<32} {v:>9.0f} {v / sb3:>10.2f}x")
    b = training["robopg_batched"]
    print("batched PPO iteration (s): " + ", ".join(f"{k} {v:.3f}" for k, v in b.items() if k != "steps_per_second"))
    print("batched scaling (envs x threads -> steps/s): "
          + ", ".join(f"{r['num_envs']}x{r['threads']}: {r['steps_per_second']:.0f}" for r in scale))
    print(f"memory per env (MiB): {memory}; peak RSS with {args.rss_envs} envs (MiB): {rss}")
    print(f"preset {args.preset} ({preset['num_envs']} envs, {preset['hidden_sizes']}): robopg "
          f"{preset['robopg_steps_per_second']:.0f} steps/s = {100 * preset['ratio_over_physics_ceiling']:.0f}% of the "
          f"ceiling, {preset['ratio_over_sb3']:.2f}x SB3 ({preset['sb3_steps_per_second']:.0f})")
    print(f"{'envs':>5} " + " ".join(f"{k:>12}" for k in PHASES))
    for row in phases:
        print(f"{row['num_envs']:>5} " + " ".join(f"{row.get(k, float('nan')):>12.4f}" for k in PHASES))
    print(f"-> {args.json}")


if __name__ == "__main__":
    main()
