"""Training throughput: robopg PPO vs Stable-Baselines3 PPO on the same task, in one run, plus the physics ceiling.

Both trainers get the same environment (robopg's flat-observation FetchPush-v4, no randomisation), the same
network (64-64 tanh actor and critic), rollout length, environment count, epochs, minibatch size and torch
thread count. The physics ceiling is raw ``mj_step`` on the same MuJoCo model, one process per core, converted
to control steps (each control step is ``n_substeps`` physics steps).

    python scripts/bench_throughput.py                      # writes docs/bench_throughput.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import time
from pathlib import Path

import torch

import envs
from robopg.config import EnvConfig, PolicyConfig, PPOConfig, RunConfig, TrainConfig
from robopg.trainer import Trainer


def robopg_steps_per_second(task: str, num_envs: int, rollout: int, steps: int, backend: str) -> float:
    cfg = TrainConfig(
        env=EnvConfig(task=task, num_envs=num_envs, randomization="none", backend=backend),
        policy=PolicyConfig(hidden_sizes=(64, 64)),
        ppo=PPOConfig(rollout_steps=rollout, epochs=10, minibatches=4),
        run=RunConfig(total_steps=steps, checkpoint_every=0),
    )
    run_dir = Path("runs/bench_throughput/robopg")
    trainer = Trainer(cfg, run_dir, progress=False)
    t0 = time.perf_counter()
    trainer.train()
    return trainer.global_step / (time.perf_counter() - t0)


def sb3_steps_per_second(task: str, num_envs: int, rollout: int, steps: int) -> float:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    vec = DummyVecEnv([lambda i=i: envs.make_env(task, seed=i) for i in range(num_envs)])
    model = PPO(
        "MlpPolicy", vec, n_steps=rollout, batch_size=rollout * num_envs // 4, n_epochs=10, seed=0, verbose=0,
        policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [64, 64]}, "activation_fn": torch.nn.Tanh},
        device="cpu",
    )
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps)
    return model.num_timesteps / (time.perf_counter() - t0)


def _mj_step_worker(args: tuple[str, float]) -> float:
    """Physics steps per second of raw mj_step on the task's model for ``seconds`` in this process."""
    task, seconds = args
    import mujoco

    env = envs.make_env(task, seed=0)
    env.reset(seed=0)
    model = env.unwrapped.model
    data = mujoco.MjData(model)
    mujoco.mj_copyData(data, model, env.unwrapped.data)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(200):
            mujoco.mj_step(model, data)
        n += 200
    return n / (time.perf_counter() - t0)


def physics_ceiling(task: str, processes: int, seconds: float = 5.0) -> tuple[float, int]:
    """(control steps per second over ``processes`` cores, n_substeps)."""
    env = envs.make_env(task, seed=0)
    substeps = int(getattr(env.unwrapped, "n_substeps", 1))
    env.close()
    with mp.get_context("spawn").Pool(processes) as pool:
        rates = pool.map(_mj_step_worker, [(task, seconds)] * processes)
    return sum(rates) / substeps, substeps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="FetchPush-v4")
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--rollout-steps", type=int, default=64)
    parser.add_argument("--steps", type=int, default=32_768, help="training steps per trainer")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=Path("docs/bench_throughput.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    cores = os.cpu_count() or 1

    ceiling, substeps = physics_ceiling(args.task, cores)
    rows = {
        "robopg_sync": robopg_steps_per_second(args.task, args.num_envs, args.rollout_steps, args.steps, "sync"),
        "robopg_subprocess": robopg_steps_per_second(
            args.task, args.num_envs, args.rollout_steps, args.steps, "subprocess"
        ),
        "sb3": sb3_steps_per_second(args.task, args.num_envs, args.rollout_steps, args.steps),
    }
    best = max(rows["robopg_sync"], rows["robopg_subprocess"])
    result = {
        "command": f"python scripts/bench_throughput.py --task {args.task} --num-envs {args.num_envs} "
        f"--rollout-steps {args.rollout_steps} --steps {args.steps}",
        "machine": f"{platform.machine()}, {cores} cores",
        "task": args.task,
        "steps_per_second": {k: round(v, 1) for k, v in rows.items()},
        "physics_ceiling_control_steps_per_second": round(ceiling, 1),
        "n_substeps": substeps,
        "ratio_robopg_over_sb3": round(best / rows["sb3"], 2),
        "ratio_robopg_over_physics_ceiling": round(best / ceiling, 2),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"{'trainer (PPO, ' + args.task + ')':<40} {'steps/s':>10}")
    for k, v in rows.items():
        print(f"{k:<40} {v:>10.0f}")
    print(f"{'physics ceiling (raw mj_step, ' + str(cores) + ' cores)':<40} {ceiling:>10.0f}")
    print(f"robopg / SB3 = {result['ratio_robopg_over_sb3']:.2f}x   "
          f"robopg / physics ceiling = {100 * result['ratio_robopg_over_physics_ceiling']:.0f}%   -> {args.json}")


if __name__ == "__main__":
    main()
