"""`make demo`: the whole pipeline on an embedded default, in a few minutes on 2 cores.

Trains the ``fetch-reach`` preset (PPO on FetchReachDense-v4 under the wide sim2real randomisation, 3 actions of
history, 50k steps), exports the ONNX file, evaluates the exported file through the controller runtime in the
training distribution and under shipped reality profiles, and prints a short table. Each stage is the same code as
its CLI command (printed as it runs).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from robopg.config import resolve_config
from robopg.evaluate import evaluate_policy
from robopg.export import export_policy
from robopg.runners import Trainer

PRESET = "fetch-reach"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="run directory (replaced)")
    parser.add_argument("--total-steps", type=int, help="training steps (default: the preset's)")
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes per setting")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.out.exists():
        shutil.rmtree(args.out)
    run = {"seed": args.seed} | ({"total_steps": args.total_steps} if args.total_steps else {})
    cfg = resolve_config(PRESET, None, {"run": run})
    task, spec = cfg.env.task, cfg.env.randomization
    steps = f" --total-steps {args.total_steps}" if args.total_steps else ""
    print(f"[1/3] robopg train --preset {PRESET}{steps} --seed {args.seed} --out {args.out}")
    t0 = time.perf_counter()
    trainer = Trainer(cfg, args.out)
    trainer.train()
    train_seconds = time.perf_counter() - t0
    steps_per_second = trainer.global_step / train_seconds

    policy = args.out / "policy.onnx"
    print(f"[2/3] robopg export {args.out} --out {policy}")
    report = export_policy(args.out, policy)
    print(f"      parity max |torch - onnxruntime| = {report.parity_max_abs_diff:.2e} "
          f"on {report.num_observations} observations")

    settings = [
        (f"training distribution ({spec})", dict(profile=None, randomization=spec)),
        ("profile nominal", dict(profile="nominal", randomization="none")),
        ("profile laggy_noisy", dict(profile="laggy_noisy", randomization="none")),
        ("profile latency_3", dict(profile="latency_3", randomization="none")),
    ]
    print(f"[3/3] robopg evaluate {policy} --profile P --episodes {args.episodes}  (P = nominal, laggy_noisy, "
          "latency_3)")
    rows = []
    for label, kwargs in settings:
        result = evaluate_policy(policy, task=task, episodes=args.episodes, seed=10_000 + args.seed, **kwargs)
        rows.append((label, result))

    print()
    print(f"robopg demo: preset {PRESET}, PPO on {task}, {trainer.global_step} steps in {train_seconds:.0f} s "
          f"({steps_per_second:.0f} steps/s end to end)")
    print(f"{'evaluated through the controller runtime':<40} {'success':>8} {'return':>9} {'p50 us':>8} {'p99 us':>8}")
    for label, r in rows:
        success = "n/a" if r.success_rate is None else f"{r.success_rate:.2f}"
        print(f"{label:<40} {success:>8} {r.mean_return:>9.3f} {r.latency_p50_us:>8.1f} {r.latency_p99_us:>8.1f}")
    print(f"\npolicy file: {policy} ({policy.stat().st_size / 1024:.0f} KiB); inspect or run it with "
          f"`robopg evaluate {policy} --profile heavy_slippery --json`")


if __name__ == "__main__":
    main()
