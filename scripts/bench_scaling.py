"""Scaling benchmark: PPO on FetchReachDense-v4 on 1 and 2 torchrun ranks of this machine.

Measured, each setting one run of the same seed and total steps, in one invocation (so the ratios compare runs
on the same, equally loaded machine):

- throughput: environment steps per second of the whole run (all ranks) and per iteration (median of
  metrics.csv's steps_per_second), for 1 rank x 16 envs, 2 ranks x 8 envs (the same update batch of 1024
  samples) and 1 rank x 8 envs (what one rank of the 2-rank run does alone);
- sample efficiency: success of the exported policy (controller runtime, nominal profile) at every periodic
  checkpoint, against environment steps (all ranks);
- the cost of synchronising: metrics.csv's sync_seconds per update of the 2-rank run (every collective of an
  iteration, waiting for the slower rank included), and a bare all-reduce of the policy's gradient vector on 2
  ranks (``--allreduce-worker``, run under torchrun), times the all-reduces of one PPO update.

    python scripts/bench_scaling.py                      # writes docs/bench_scaling.json

On a machine of 2 cores, 2 ranks share the cores the single rank's physics threads had: throughput cannot
double there, and the figure shows the overhead of splitting, not the gain of adding machines
(docs/distributed.md says what scales).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SETTINGS = (  # (name, ranks, envs per rank)
    ("1 rank x 16 envs", 1, 16),
    ("2 ranks x 8 envs", 2, 8),
    ("1 rank x 8 envs", 1, 8),
)
GRADIENT_REPEATS = 200


def robopg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robopg", *args], capture_output=True, text=True, check=True)


def train(run_dir: Path, ranks: int, envs: int, args: argparse.Namespace) -> float:
    """Train one setting; returns the wall-clock seconds of the whole command (start-up included)."""
    launch = ["--nproc-per-node", str(ranks)] if ranks > 1 else []
    t0 = time.perf_counter()
    robopg("train", *launch, "--task", "FetchReachDense-v4", "--num-envs", str(envs), "--total-steps",
           str(args.total_steps), "--seed", str(args.seed), "--randomization", "default", "--checkpoint-every",
           str(args.checkpoint_every), "--no-progress", "--out", str(run_dir))
    return time.perf_counter() - t0


def success_curve(run_dir: Path, episodes: int) -> list[tuple[int, float]]:
    """(env steps, success of the exported checkpoint under the nominal profile) per periodic checkpoint."""
    curve = []
    for checkpoint in sorted((run_dir / "checkpoints").glob("step_*.pt")):
        policy = run_dir / "bench.onnx"
        robopg("export", str(checkpoint), "--out", str(policy))
        result = json.loads(robopg("evaluate", str(policy), "--episodes", str(episodes), "--seed", "50000",
                                   "--json").stdout)
        curve.append((int(checkpoint.stem.split("_")[1]), result["success_rate"]))
    return curve


def measure(name: str, ranks: int, envs: int, args: argparse.Namespace) -> dict:
    from robopg.logger import read_metrics

    run_dir = args.out_dir / name.replace(" ", "")
    seconds = train(run_dir, ranks, envs, args)
    rows = read_metrics(run_dir)
    row = {
        "setting": name, "ranks": ranks, "envs_per_rank": envs, "steps": int(rows[-1]["step"]),
        "wall_seconds": round(seconds, 1),
        "steps_per_second_median": round(statistics.median(r["steps_per_second"] for r in rows), 1),
        "update_seconds_median": round(statistics.median(r["update_seconds"] for r in rows), 4),
        "success": success_curve(run_dir, args.episodes),
    }
    if ranks > 1:
        row["sync_seconds_median"] = round(statistics.median(r["sync_seconds"] for r in rows), 4)
    print(json.dumps(row), flush=True)
    return row


def allreduce_worker(out: Path) -> None:
    """Under torchrun: time one all-reduce of the default PPO policy's parameter count (one gradient step's)."""
    import torch
    import torch.distributed as dist

    from robopg.config import TrainConfig
    from robopg.facts import TaskFacts
    from robopg.modules import build_policy

    cfg = TrainConfig()
    numel = sum(p.numel() for p in build_policy(cfg, TaskFacts.for_run(cfg)).parameters())
    dist.init_process_group("gloo")
    flat = torch.zeros(numel)
    for _ in range(10):  # connections and buffers warm
        dist.all_reduce(flat)
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(GRADIENT_REPEATS):
        dist.all_reduce(flat)
    seconds = (time.perf_counter() - t0) / GRADIENT_REPEATS
    if dist.get_rank() == 0:
        ppo = cfg.ppo
        per_update = ppo.epochs * ppo.minibatches + ppo.epochs  # a gradient per minibatch, the KL per epoch
        out.write_text(json.dumps({"parameters": numel, "allreduce_seconds": seconds,
                                   "allreduces_per_ppo_update": per_update,
                                   "seconds_per_ppo_update": seconds * per_update}))
    dist.destroy_process_group()


def bare_allreduce(out_dir: Path) -> dict:
    out = out_dir / "allreduce.json"
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                    __file__, "--allreduce-worker", str(out)], check=True, capture_output=True, text=True)
    result = json.loads(out.read_text())
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--total-steps", type=int, default=32_768)
    parser.add_argument("--checkpoint-every", type=int, default=8, help="iterations between evaluated checkpoints")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=20, help="evaluation episodes per checkpoint")
    parser.add_argument("--out-dir", type=Path, default=Path("runs/bench_scaling"))
    parser.add_argument("--json", type=Path, default=Path("docs/bench_scaling.json"))
    parser.add_argument("--allreduce-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.allreduce_worker:
        allreduce_worker(args.allreduce_worker)
        return
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rows = [measure(name, ranks, envs, args) for name, ranks, envs in SETTINGS]
    summary = {
        "command": f"python scripts/bench_scaling.py --total-steps {args.total_steps} --checkpoint-every "
                   f"{args.checkpoint_every} --seed {args.seed} --episodes {args.episodes}",
        "machine": {"cpus": len(os.sched_getaffinity(0)), "load_average_at_end": os.getloadavg()},
        "settings": rows,
        "bare_allreduce_2_ranks": bare_allreduce(args.out_dir),
        "throughput_2_ranks_over_1_rank_16_envs": round(rows[1]["steps_per_second_median"]
                                                        / rows[0]["steps_per_second_median"], 3),
    }
    args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
