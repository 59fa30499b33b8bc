"""Algorithm benchmark: every --algo on the same tasks, step budgets and seeds; a table and learning curves.

Each algorithm runs with its own defaults (``robopg train --algo A --help``) plus the per-task settings
below, which are the same for every algorithm (discount, env count, and for REINFORCE a rollout long
enough to hold whole episodes). Each run is then exported and its ONNX file evaluated through the
controller runtime for --episodes deterministic episodes: the deployed policy is what is scored.

    python scripts/bench_algorithms.py --seeds 0 1            # the table in docs/bench_algorithms.md
    python scripts/bench_algorithms.py --halfcheetah --seeds 0   # PPO on HalfCheetah-v5 for 1M steps

Writes docs/bench_algorithms.json (every run, with its curve), docs/bench_algorithms.md (table) and
docs/bench_algorithms.png (learning curves). Finished runs in --out-dir are reused, so an interrupted
benchmark continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robopg.config import Algo, TrainConfig
from robopg.evaluate import evaluate_policy
from robopg.export import export_policy
from robopg.logger import read_metrics
from robopg.runners import Trainer


@dataclass(frozen=True)
class TaskSetup:
    steps: int
    num_envs: int = 8
    randomization: str = "none"
    section: dict[str, Any] = field(default_factory=dict)  # applied to every algorithm's section
    per_algo: dict[str, dict[str, Any]] = field(default_factory=dict)  # extra, by algorithm


TASKS: dict[str, TaskSetup] = {
    "InvertedPendulum-v5": TaskSetup(steps=100_000, section={"gamma": 0.99}),
    "Pendulum-v1": TaskSetup(steps=200_000, section={"gamma": 0.95},
                             per_algo={"reinforce": {"rollout_steps": 200}}),  # 200-step episodes
    "FetchReachDense-v4": TaskSetup(steps=50_000, num_envs=16, randomization="default"),
}
HALFCHEETAH = {
    # CleanRL's ppo_continuous_action settings where robopg has them: 2048 samples per rollout, 10 epochs,
    # minibatches of 64, gamma 0.99, lambda 0.95, clip 0.2; 8 envs x 256 steps instead of 1 x 2048.
    "HalfCheetah-v5": TaskSetup(
        steps=1_000_000, num_envs=8,
        section={"gamma": 0.99, "rollout_steps": 256, "minibatches": 32, "learning_rate": 3e-4},
    ),
}
CURVE_BINS = 20


def run_one(task: str, setup: TaskSetup, algo: Algo, seed: int, out_dir: Path, episodes: int) -> dict[str, Any]:
    run_dir = out_dir / task / algo.value / f"seed{seed}"
    section = {**setup.section, **setup.per_algo.get(algo.value, {})}
    cfg = TrainConfig().replace({
        "env": {"task": task, "num_envs": setup.num_envs, "randomization": setup.randomization},
        "run": {"algo": algo, "total_steps": setup.steps, "seed": seed, "checkpoint_every": 0},
        algo.section: section,
    })
    timing = run_dir / "train_seconds.json"
    if not (run_dir / "final.pt").is_file():
        if run_dir.exists():
            for stale in run_dir.rglob("*"):
                if stale.is_file():
                    stale.unlink()
        start = time.perf_counter()
        Trainer(cfg, run_dir, progress=False).train()
        timing.write_text(json.dumps(time.perf_counter() - start))
    train_seconds = float(json.loads(timing.read_text())) if timing.is_file() else math.nan
    policy = export_policy(run_dir, run_dir / "policy.onnx").path
    result = evaluate_policy(policy, task=task, profile=None, randomization="none", episodes=episodes, seed=10_000)
    rows = read_metrics(run_dir)
    return {
        "task": task, "algo": algo.value, "seed": seed, "total_steps": setup.steps,
        "settings": {"num_envs": setup.num_envs, "randomization": setup.randomization, algo.section: section},
        "train_seconds": train_seconds,
        "eval_mean_return": result.mean_return, "eval_std_return": result.std_return,
        "eval_success_rate": result.success_rate, "eval_episodes": episodes,
        "final_train_return": _last_mean(rows, "episode_return"),
        "curve": _curve(rows, setup.steps),
    }


def _last_mean(rows: list[dict[str, float]], key: str, window: int = 5) -> float:
    values = [r[key] for r in rows if not math.isnan(r.get(key, math.nan))]
    return float(np.mean(values[-window:])) if values else math.nan


def _curve(rows: list[dict[str, float]], total: int) -> list[list[float]]:
    """[bin end step, mean training episode return in the bin] over CURVE_BINS equal step bins."""
    edges = np.linspace(0, total, CURVE_BINS + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        values = [r["episode_return"] for r in rows if lo < r["step"] <= hi and not math.isnan(r["episode_return"])]
        out.append([float(hi), float(np.mean(values)) if values else math.nan])
    return out


def write_table(results: list[dict[str, Any]], extra: list[dict[str, Any]], path: Path, command: str) -> None:
    tasks = list(dict.fromkeys(r["task"] for r in results))
    algos = [a.value for a in Algo if any(r["algo"] == a.value for r in results)]
    lines = [
        "# Algorithm benchmark",
        "",
        f"Produced by `{command}` on {platform.processor() or platform.machine()} "
        f"({platform.node()}); every cell is the mean +- std over seeds of the exported policy's mean return "
        "over deterministic episodes run through the controller runtime (success rate in brackets where the "
        "task has one). Same step budget, seeds and per-task settings for every algorithm; see "
        "`scripts/bench_algorithms.py` for them and docs/bench_algorithms.json for each run.",
        "",
        "| algorithm | " + " | ".join(f"{t} ({_steps(results, t)} steps)" for t in tasks) + " |",
        "|---|" + "---|" * len(tasks),
    ]
    for algo in algos:
        cells = []
        for task in tasks:
            runs = [r for r in results if r["task"] == task and r["algo"] == algo]
            if not runs:
                cells.append("-")
                continue
            returns = [r["eval_mean_return"] for r in runs]
            cell = f"{np.mean(returns):.1f} +- {np.std(returns):.1f}"
            successes = [r["eval_success_rate"] for r in runs if r["eval_success_rate"] is not None]
            if successes:
                cell += f" [{np.mean(successes):.2f}]"
            minutes = [r["train_seconds"] / 60 for r in runs if not math.isnan(r["train_seconds"])]
            if minutes:
                cell += f" ({np.mean(minutes):.1f} min)"
            cells.append(cell)
        lines.append(f"| {algo} | " + " | ".join(cells) + " |")
    seeds = sorted({r["seed"] for r in results})
    lines += ["", f"Seeds: {seeds}. Minutes are training wall time per run on this machine, shared with other work.",
              "", "![learning curves](bench_algorithms.png)", ""]
    for r in extra:
        lines += [
            f"## PPO on {r['task']}, {r['total_steps']:,} steps (`python scripts/bench_algorithms.py --halfcheetah "
            f"--seeds {r['seed']}`)",
            "",
            f"Seed {r['seed']}: deployed policy {r['eval_mean_return']:.0f} +- {r['eval_std_return']:.0f} over "
            f"{r['eval_episodes']} deterministic episodes; training episodes averaged {r['final_train_return']:.0f} "
            f"over the last logged iterations; {r['train_seconds'] / 60:.1f} min of training. CleanRL's published PPO "
            "reaches 1442 +- 46 at 1M steps (its training episodes, with reward normalisation, which robopg does "
            "not have). Settings: " + json.dumps(r["settings"]),
            "",
        ]
    path.write_text("\n".join(lines))


def _steps(results: list[dict[str, Any]], task: str) -> str:
    return f"{next(r['total_steps'] for r in results if r['task'] == task):,}"


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in results))
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for algo in [a.value for a in Algo]:
            runs = [r for r in results if r["task"] == task and r["algo"] == algo]
            if not runs:
                continue
            steps = np.array([p[0] for p in runs[0]["curve"]])
            curves = np.array([[p[1] for p in r["curve"]] for r in runs], dtype=float)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bins: no episode ended there
                mean = np.nanmean(curves, axis=0)
            ax.plot(steps, mean, label=algo)
        ax.set_title(task)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("training episode return")
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--algos", nargs="+", default=[a.value for a in Algo], choices=[a.value for a in Algo])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), help="subset of " + ", ".join(TASKS))
    parser.add_argument("--halfcheetah", action="store_true", help="PPO on HalfCheetah-v5 for 1M steps instead")
    parser.add_argument("--episodes", type=int, default=10, help="deterministic evaluation episodes per run")
    parser.add_argument("--out-dir", type=Path, default=Path("runs/bench_algorithms"))
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    args = parser.parse_args()

    if args.halfcheetah:
        plan = [(t, s, Algo.PPO) for t, s in HALFCHEETAH.items()]
    else:
        unknown = set(args.tasks) - set(TASKS)
        if unknown:
            parser.error(f"unknown task(s) {sorted(unknown)}; choose from {', '.join(TASKS)}")
        plan = [(t, TASKS[t], Algo(a)) for t in args.tasks for a in args.algos]
    args.docs.mkdir(parents=True, exist_ok=True)
    results_path = args.docs / "bench_algorithms.json"
    results = json.loads(results_path.read_text())["runs"] if results_path.is_file() else []
    for task, setup, algo in plan:
        for seed in args.seeds:
            result = run_one(task, setup, algo, seed, args.out_dir, args.episodes)
            results = [r for r in results if (r["task"], r["algo"], r["seed"]) != (task, algo.value, seed)]
            results.append(result)
            print(f"{task:22s} {algo.value:10s} seed {seed}: deployed return {result['eval_mean_return']:9.1f} "
                  f"(train {result['final_train_return']:9.1f}), {result['train_seconds']:.0f} s", flush=True)
            results_path.write_text(json.dumps({"machine": platform.node(), "runs": results}, indent=1))
    main_results = [r for r in results if r["task"] in TASKS]
    command = "python scripts/bench_algorithms.py --seeds " + " ".join(map(str, sorted({r["seed"] for r in main_results})))
    if main_results:
        extra = [r for r in results if r["task"] in HALFCHEETAH]
        write_table(main_results, extra, args.docs / "bench_algorithms.md", command)
        plot(main_results, args.docs / "bench_algorithms.png")


if __name__ == "__main__":
    main()
