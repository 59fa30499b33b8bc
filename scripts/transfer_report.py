"""Sim-to-real transfer report: train five variants per task, deploy each exported file into reality profiles.

For each task (FetchPush-v4, FetchPickAndPlace-v4, and FetchReach-v4 as the control task PPO solves within
this machine's budget) this trains, through the `robopg` CLI:

    (a) none        no randomisation
    (b) random      randomisation over envs/specs/sim2real.toml
    (c) random+asym randomisation + asymmetric critic (privileged inputs for the critic only)
    (d) adr         automatic domain randomisation with sim2real.toml's ranges as the limits
    (e) lstm        randomisation + an LSTM actor (--recurrent lstm; its critic has its own LSTM), memory being how
                    a policy infers the robot it is on (Peng et al. 2018)

then exports each run to ONNX and evaluates the file with `robopg evaluate` (the controller runtime against
the simulated robot, deterministic actions) on the nominal simulator and on shipped reality profiles
(heavier / lighter object, low / high friction, 2 and 3 steps of latency, doubled sensor noise).

    python scripts/transfer_report.py                       # the report in docs/transfer_report.md
    python scripts/transfer_report.py --tasks FetchPush-v4 --steps 300000 --episodes 20   # a quicker look

Writes docs/transfer_report.json (every evaluation), docs/transfer_report.md (tables, settings, command) and
docs/transfer_report.png (success per profile). Finished runs and evaluations in --out-dir are reused, so an
interrupted report continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from envs.randomization import SPECS_DIR

ROOT = Path(__file__).resolve().parent.parent
SPEC = SPECS_DIR / "sim2real.toml"
PROFILES = ("nominal", "object_heavy", "object_light", "friction_low", "friction_high", "latency_2", "latency_3",
            "sensor_noise_x2")
DROP = 0.1  # "drops clearly": the unrandomised policy loses more than this much success against nominal
GOAL = 0.8


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    flags: tuple[str, ...]


VARIANTS = (
    Variant("none", "(a) no randomisation", ("--randomization", "none")),
    Variant("random", "(b) randomisation", ("--randomization", str(SPEC))),
    Variant("asym", "(c) randomisation + asymmetric critic", ("--randomization", str(SPEC), "--asymmetric-critic")),
    Variant("adr", "(d) ADR", ("--randomization", str(SPEC), "--adr")),
    Variant("lstm", "(e) randomisation + LSTM", ("--randomization", str(SPEC), "--recurrent", "lstm")),
)
# The same PPO settings for every variant and task: 32 envs x 64 steps per rollout.
COMMON = ("--algo", "ppo", "--num-envs", "32", "--rollout-steps", "64", "--gamma", "0.98",
          "--hidden-sizes", "128", "128", "--minibatches", "4", "--checkpoint-every", "50", "--no-progress")


@dataclass(frozen=True)
class TaskSetup:
    train_task: str  # the id trained on (Reach trains on its Dense twin; success is the same test)
    steps: int  # default training steps per run
    flags: tuple[str, ...]


TASKS = {
    "FetchReach-v4": TaskSetup("FetchReachDense-v4", 150_000, ("--reward", "task")),
    # Fewer epochs and a small entropy bonus: with 10 epochs and none, the action std collapsed before PPO found
    # how to push (success stayed at chance for 1.5M steps); with these it climbs past 0.6 by 1.1M steps.
    "FetchPush-v4": TaskSetup("FetchPush-v4", 1_500_000, ("--reward", "shaped", "--reach-offset", "0.05",
                                                          "--epochs", "5", "--entropy-coef", "0.005")),
    "FetchPickAndPlace-v4": TaskSetup("FetchPickAndPlace-v4", 500_000, ("--reward", "shaped")),
}


def robopg(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "robopg", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


def train_and_export(task: str, variant: Variant, steps: int, seed: int, out_dir: Path) -> Path:
    setup = TASKS[task]
    run_dir = out_dir / f"{task}_{variant.key}_s{seed}"
    policy = run_dir / "policy.onnx"
    if policy.is_file():
        return policy
    if (run_dir / "final.pt").is_file():
        pass  # trained already; only the export is missing
    elif (run_dir / "config.json").is_file():
        robopg("train", "--resume", str(run_dir), "--no-progress")
    else:
        t0 = time.perf_counter()
        robopg("train", "--task", setup.train_task, *COMMON, *setup.flags, *variant.flags, "--total-steps", str(steps),
               "--seed", str(seed), "--out", str(run_dir))
        print(f"  trained {run_dir.name} in {time.perf_counter() - t0:.0f} s", flush=True)
    robopg("export", str(run_dir), "--out", str(policy))
    return policy


def evaluate(policy: Path, task: str, profile: str, episodes: int, seed: int) -> dict:
    cache = policy.parent / f"eval_{profile}_{episodes}ep_s{seed}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    done = robopg("evaluate", str(policy), "--task", task, "--profile", profile, "--episodes", str(episodes),
                  "--seed", str(seed), "--json")
    result = json.loads(done.stdout[done.stdout.index("{"):])
    cache.write_text(json.dumps(result, indent=2))
    return result


def adr_ranges(run_dir: Path) -> dict[str, list[float]]:
    """Final ADR ranges of a run (from its last metrics row)."""
    import csv

    with (run_dir / "metrics.csv").open() as f:
        last = list(csv.DictReader(f))[-1]
    names = sorted({k[4:-4] for k in last if k.startswith("adr_") and k.endswith("_low")})
    return {n: [float(last[f"adr_{n}_low"]), float(last[f"adr_{n}_high"])] for n in names} | {
        "coverage": [float(last["adr_coverage"])]}


def training_summary(run_dir: Path) -> dict[str, float]:
    """Success over the last 10 iterations and the minutes spent collecting and updating (from metrics.csv)."""
    import csv

    with (run_dir / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    tail = [float(r["success_rate"]) for r in rows[-10:] if r["success_rate"] not in ("", "nan")]
    seconds = sum(float(r["collect_seconds"]) + float(r["update_seconds"]) for r in rows)
    return {"success": float(np.mean(tail)) if tail else float("nan"), "minutes": seconds / 60}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--variants", nargs="+", default=[v.key for v in VARIANTS],
                        choices=[v.key for v in VARIANTS])
    parser.add_argument("--steps", type=int, help="training steps per run (default: per task, see TASKS)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes per profile")
    parser.add_argument("--profiles", nargs="+", default=list(PROFILES))
    parser.add_argument("--jobs", type=int, default=2, help="trainings / evaluations run at once")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "runs" / "transfer")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    variants = [v for v in VARIANTS if v.key in args.variants]

    jobs = [(task, v) for task in args.tasks for v in variants]
    steps = {task: args.steps or TASKS[task].steps for task in args.tasks}
    with ThreadPoolExecutor(args.jobs) as pool:
        policies = dict(zip(jobs, pool.map(
            lambda job: train_and_export(job[0], job[1], steps[job[0]], args.seed, args.out_dir), jobs), strict=True))
        evals = [(task, v, p) for (task, v) in jobs for p in args.profiles]
        results = list(pool.map(
            lambda e: evaluate(policies[(e[0], e[1])], TASKS[e[0]].train_task, e[2], args.episodes, 10_000 + args.seed),
            evals))

    rows = []
    for (task, v, profile), result in zip(evals, results, strict=True):
        run_dir = policies[(task, v)].parent
        rows.append({"task": task, "variant": v.key, "label": v.label, "profile": profile,
                     "success_rate": result["success_rate"], "mean_return": result["mean_return"],
                     "fallbacks": result["fallbacks"], "episodes": result["episodes"],
                     "run_dir": str(run_dir.relative_to(ROOT) if run_dir.is_relative_to(ROOT) else run_dir)})
    report = {
        "command": " ".join(["python scripts/transfer_report.py", *sys.argv[1:]]),
        "steps": steps, "seed": args.seed, "task_flags": {t: " ".join(TASKS[t].flags) for t in args.tasks},
        "train_tasks": {t: TASKS[t].train_task for t in args.tasks}, "episodes": args.episodes, "eval_seed": 10_000 + args.seed,
        "spec": str(SPEC.relative_to(ROOT)), "common_flags": " ".join(COMMON),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "training": {f"{t}/{v.key}": training_summary(policies[(t, v)].parent) for t, v in jobs},
        "adr_ranges": {t: adr_ranges(policies[(t, v)].parent) for t, v in jobs if v.key == "adr"},
        "rows": rows,
    }
    args.docs.mkdir(parents=True, exist_ok=True)
    (args.docs / "transfer_report.json").write_text(json.dumps(report, indent=2))
    (args.docs / "transfer_report.md").write_text(markdown(report, args.tasks, variants, args.profiles))
    plot(report, args.tasks, variants, args.profiles, args.docs / "transfer_report.png")
    print((args.docs / "transfer_report.md").read_text())


def success_table(report: dict, task: str, variants: list[Variant], profiles: list[str],
                  column: str = "success_rate") -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {v.key: {} for v in variants}
    for row in report["rows"]:
        if row["task"] == task:
            table[row["variant"]][row["profile"]] = row[column]
    return table


def cell(success: float, fallbacks: int) -> str:
    return f"{success:.2f}" + (f" [{fallbacks}]" if fallbacks else "")


def markdown(report: dict, tasks: list[str], variants: list[Variant], profiles: list[str]) -> str:
    lines = [
        "# Sim-to-real transfer report", "",
        f"Command: `{report['command']}` on {report['machine']}; training took "
        f"{sum(t['minutes'] for t in report['training'].values()):.0f} min of collection and updates in all"
        " (two runs at a time).", "",
        f"Each policy: PPO, seed {report['seed']}, flags `{report['common_flags']}` plus the task's own (below);"
        f" randomised variants use `{report['spec']}`. Each cell is the success rate of the exported ONNX file run by"
        f" the controller runtime (`robopg evaluate`, deterministic actions) over {report['episodes']} episodes"
        f" (evaluation seed {report['eval_seed']}) under the reality profile of the column (`envs/profiles/`);"
        " [n] counts the ticks (of 50 x 50) where the runtime's safety layer sent its safe action instead, almost all"
        " for observations outside the range the policy's normaliser saw in training.", "",
    ]
    for task in tasks:
        table = success_table(report, task, variants, profiles)
        fallbacks = success_table(report, task, variants, profiles, "fallbacks")
        lines += [f"## {task}", "",
                  f"Trained on `{report['train_tasks'][task]}` for {report['steps'][task]:,} steps with "
                  f"`{report['task_flags'][task]}`.", "",
                  "| variant | " + " | ".join(profiles) + " | training success | training min |",
                  "|---|" + "---|" * (len(profiles) + 2)]
        for v in variants:
            cells = [cell(table[v.key][p], fallbacks[v.key][p]) for p in profiles]
            train = report["training"][f"{task}/{v.key}"]
            lines.append(f"| {v.label} | " + " | ".join(cells) + f" | {train['success']:.2f} | {train['minutes']:.0f} |")
        lines += ["", *goal_lines(table, variants, profiles), ""]
        if task in report["adr_ranges"]:
            ranges = report["adr_ranges"][task]
            coverage = ranges.pop("coverage")[0]
            lines += [f"ADR's final ranges ({coverage:.0%} of the limits covered on average): "
                      + ", ".join(f"{n} [{lo:g}, {hi:g}]" for n, (lo, hi) in ranges.items()), ""]
    return "\n".join(lines) + "\n"


def goal_lines(table: dict[str, dict[str, float]], variants: list[Variant], profiles: list[str]) -> list[str]:
    """Which profiles the unrandomised policy drops on, and whether the randomised ones keep >= GOAL there."""
    if "none" not in table or "nominal" not in table["none"]:
        return []
    base = table["none"]["nominal"]
    dropped = [p for p in profiles if p != "nominal" and table["none"].get(p, base) < base - DROP]
    if not dropped:
        return [f"The unrandomised policy does not drop by more than {DROP} on any profile "
                f"(nominal {base:.2f})."]
    out = [f"The unrandomised policy drops by more than {DROP} (from {base:.2f}) on: {', '.join(dropped)}."]
    for v in variants:
        if v.key == "none":
            continue
        short = [f"{p} {table[v.key][p]:.2f}" for p in dropped if table[v.key].get(p, 0.0) < GOAL]
        verdict = "keeps >= 0.8 on all of them" if not short else "falls short of 0.8 on " + ", ".join(short)
        out.append(f"- {v.label}: {verdict}.")
    return out


def plot(report: dict, tasks: list[str], variants: list[Variant], profiles: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(tasks), 1, figsize=(12, 3.6 * len(tasks)), squeeze=False)
    width = 0.8 / len(variants)
    x = np.arange(len(profiles))
    for ax, task in zip(axes[:, 0], tasks, strict=True):
        table = success_table(report, task, variants, profiles)
        for k, v in enumerate(variants):
            ax.bar(x + (k - (len(variants) - 1) / 2) * width, [table[v.key].get(p, np.nan) for p in profiles],
                   width, label=v.label)
        ax.axhline(GOAL, color="k", lw=0.8, ls="--")
        ax.set_xticks(x, profiles, rotation=15)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("success rate")
        ax.set_title(f"{task}: PPO, {report['steps'][task]:,} steps, seed {report['seed']}, "
                     f"{report['episodes']} episodes per profile")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(variants), fontsize=9)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
