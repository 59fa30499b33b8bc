"""Learning benchmark: PPO on FetchReachDense-v4 with the default randomisation, success within 50k steps.

Target (docs/design.md): success >= 0.95 within 50k environment steps. The success rate is measured the way a user
would meet it: the exported ONNX file run through the controller runtime for --episodes episodes, in the
training simulator (default randomisation) and on the nominal robot profile, for each seed.

    python scripts/bench_learning.py --seeds 0 1 2          # writes docs/bench_learning.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from robopg.config import TrainConfig, load_config
from robopg.evaluate import evaluate_policy
from robopg.export import export_policy
from robopg.runners import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="FetchReachDense-v4")
    parser.add_argument("--total-steps", type=int, default=50_000)
    parser.add_argument("--randomization", default="default")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes per seed and setting")
    parser.add_argument("--config", help="optional config file (flags above override its env/run fields)")
    parser.add_argument("--out-dir", type=Path, default=Path("runs/bench_learning"))
    parser.add_argument("--json", type=Path, default=Path("docs/bench_learning.json"))
    args = parser.parse_args()

    base = load_config(args.config) if args.config else TrainConfig()
    results = []
    for seed in args.seeds:
        cfg = base.replace({"env": {"task": args.task, "randomization": args.randomization},
                            "run": {"total_steps": args.total_steps, "seed": seed}})
        run_dir = args.out_dir / f"seed{seed}"
        t0 = time.perf_counter()
        trainer = Trainer(cfg, run_dir, progress=False)
        last = trainer.train()
        seconds = time.perf_counter() - t0
        policy = run_dir / "policy.onnx"
        parity = export_policy(run_dir, policy).parity_max_abs_diff
        sim = evaluate_policy(policy, task=args.task, profile=None, randomization=args.randomization,
                              episodes=args.episodes, seed=50_000)
        nominal = evaluate_policy(policy, task=args.task, profile="nominal", episodes=args.episodes, seed=50_000)
        row = {
            "seed": seed, "steps": trainer.global_step, "train_seconds": round(seconds, 1),
            "train_success_last_iteration": last.get("success_rate"),
            "success_training_sim": sim.success_rate, "success_nominal": nominal.success_rate,
            "return_training_sim": round(sim.mean_return, 3), "parity": parity,
        }
        results.append(row)
        print(json.dumps(row), flush=True)
    summary = {
        "command": f"python scripts/bench_learning.py --task {args.task} --total-steps {args.total_steps} "
        f"--randomization {args.randomization} --seeds {' '.join(map(str, args.seeds))}",
        "task": args.task, "randomization": args.randomization, "total_steps": args.total_steps,
        "config": base.to_dict(), "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "results": results,
        "min_success_training_sim": min(r["success_training_sim"] for r in results),
        "mean_success_training_sim": sum(r["success_training_sim"] for r in results) / len(results),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2))
    print(f"success in training sim: min {summary['min_success_training_sim']:.2f}, "
          f"mean {summary['mean_success_training_sim']:.2f} over seeds {args.seeds} -> {args.json}")


if __name__ == "__main__":
    main()
