"""Manipulation benchmark: train each preset, export it, and deploy the file into every shipped reality profile.

For each preset (robopg/presets/) and seed this trains runs through the `robopg` CLI, all with the preset's budget:

    randomized   the preset as shipped (wide randomisation, ramped in by its curriculum; its feed-forward policy
                 sees the last 3 actions: action_history = 3)
    none         the same recipe without randomisation (--randomization none --no-curriculum)
    lstm         the preset with an LSTM actor (--recurrent lstm; the memory runs on the same input, last actions
                 included, as Peng et al.'s LSTM saw the previous action)
    feedforward  the preset without the action history (--action-history 0): a plain feed-forward policy
    adr          automatic domain randomisation instead of the preset's curriculum (--adr --no-curriculum)

The default variants are randomized and none; `--variants randomized lstm feedforward` gives Peng et al. 2018's
comparison (real robot: LSTM 0.89 > feed-forward with history 0.70 > feed-forward 0.67), and the report says
whether this benchmark reproduces that ordering.

exports each to ONNX, and evaluates the file through the controller runtime (`robopg.evaluate.evaluate_policy`,
the robot's code path, deterministic actions, 50 episodes per cell, evaluation seed 10000) in the preset's
training distribution (its full-width spec) and under every shipped profile (envs/profiles/). Success is
gymnasium-robotics' own is_success at the end of the task's 50 steps with its own goal distribution: the
training-only exploration options (near-grasp starts, in-air goal ramp) are never used in evaluation.

    python scripts/bench_manipulation.py --presets fetch-push --seeds 0 1        # ~35 min a run on 2 cores
    python scripts/bench_manipulation.py --presets fetch-pick-and-place --seeds 0
    python scripts/bench_manipulation.py --presets fetch-push --seeds 0 --variants lstm feedforward
    python scripts/bench_manipulation.py --report-only                              # tables and plot from runs/

Runs live in --runs-dir (default runs/bench_manipulation/PRESET/VARIANT_sSEED); a finished run (final.pt) is
reused and an interrupted one is resumed, so the benchmark can be stopped and restarted (or its runs trained in
the background by hand with the command it prints). With --report-only an unfinished run is evaluated at its
newest checkpoint and its row says "unfinished" with the steps it had reached. Writes docs/bench_manipulation.json (every cell, curves),
docs/bench_manipulation.md (tables, settings, commands) and docs/bench_manipulation.png (learning curves
against env steps and wall-clock minutes, success per profile).

The report accumulates: rows already in the JSON that this invocation did not measure again (other presets, or runs
whose directories are not on this machine) are kept as recorded. Each row names the version of the preset it
trained on (the sha256 of the preset's file, written to RUN_DIR/preset.sha256 when training ends); a preset changed
since is a new row, and the earlier version's rows stay beside it, marked †, out of the orderings and the plot.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

import envs
from robopg.checkpoint import load_checkpoint
from robopg.config import resolve_config
from robopg.evaluate import evaluate_policy
from robopg.export import export_policy
from robopg.logger import read_metrics
from robopg.presets import PRESETS_DIR

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {
    "randomized": (),
    "none": ("--randomization", "none", "--no-curriculum"),
    "lstm": ("--recurrent", "lstm"),
    "feedforward": ("--action-history", "0"),
    "adr": ("--adr", "--no-curriculum"),
}
DEFAULT_VARIANTS = ("randomized", "none")
PENG_ORDER = (("lstm", "LSTM"), ("randomized", "feed-forward + history"), ("feedforward", "feed-forward"))
"""Peng et al. 2018's ranking on the real robot, best first: (variant, what it is)."""
TRAINING = "training"  # the cell of the preset's own (full-width) training distribution
EVAL_SEED = 10_000
TARGETS = {  # preset -> (training distribution, every profile), from the manipulation issue
    "fetch-push": (0.90, 0.80),
    "fetch-pick-and-place": (0.80, 0.70),
    "fetch-reach": (0.95, 0.90),
}
MEASURED_ONLY = {"fetch-slide": "measured and reported (no target), within 10M steps"}  # the other rows
PRESET_ORDER = ("fetch-reach", "fetch-push", "fetch-pick-and-place", "fetch-slide")  # table order
DIGEST_FILE = "preset.sha256"  # in a run directory: the version of the preset the run trained on


def preset_digest(preset: str) -> str:
    """The version of a preset's recipe: the first 12 hex digits of the sha256 of its file."""
    return hashlib.sha256((PRESETS_DIR / f"{preset}.toml").read_bytes()).hexdigest()[:12]


def run_digest(out: Path, preset: str) -> str:
    """The preset version the run in ``out`` trained on: recorded when it finished training here, else (a run
    trained before this was recorded) the preset's current version."""
    path = out / DIGEST_FILE
    return path.read_text().strip() if path.is_file() else preset_digest(preset)


def merge_recorded(path: Path, runs: list[dict], key) -> list[dict]:
    """``runs`` and the rows of the report already at ``path`` that none of them replaces (the same ``key(row)``).

    A report accumulates across invocations and machines: a row whose run directory is not on this machine (runs/
    is not kept) or was not asked for this time keeps the figures measured when the run was there."""
    recorded = json.loads(path.read_text())["runs"] if path.is_file() else []
    fresh = {key(r) for r in runs}
    return runs + [r for r in recorded if key(r) not in fresh]


def row_key(run: dict) -> tuple:
    """Which run a row reports: a retrained preset version is a new row, the earlier one stays beside it."""
    return run["preset"], run["variant"], run["seed"], run.get("preset_sha"), run.get("average_last", 1)


def preset_rank(preset: str) -> tuple:
    return (PRESET_ORDER.index(preset) if preset in PRESET_ORDER else len(PRESET_ORDER)), preset


def table_order(run: dict) -> tuple:
    return (*preset_rank(run["preset"]), run["seed"], not is_current(run), list(VARIANTS).index(run["variant"]),
            run.get("average_last", 1))


def is_current(run: dict) -> bool:
    """Whether the row's run trained on the preset as it is now."""
    return run.get("preset_sha") == preset_digest(run["preset"])


def run_dir(root: Path, preset: str, variant: str, seed: int) -> Path:
    return root / preset / f"{variant}_s{seed}"


def train_command(preset: str, variant: str, seed: int, out: Path, steps: int | None) -> list[str]:
    command = [sys.executable, "-m", "robopg", "train", "--preset", preset, "--seed", str(seed), "--no-progress",
               *VARIANTS[variant]]
    if steps is not None:
        command += ["--total-steps", str(steps)]
    if (out / "latest.pt").is_file() or (out / "final.pt").is_file():
        return command[:3] + ["--resume", str(out), "--no-progress"] + (
            ["--total-steps", str(steps)] if steps is not None else [])
    return command + ["--out", str(out)]


def train(preset: str, variant: str, seed: int, out: Path, steps: int | None) -> None:
    """Train (or resume) one run to its budget; a run whose final.pt covers the budget is left alone."""
    if (out / "final.pt").is_file():
        rows = read_metrics(out)
        budget = steps or resolve_config(preset, None, {}).run.total_steps
        if rows and rows[-1]["step"] >= budget:
            return
    out.parent.mkdir(parents=True, exist_ok=True)
    command = train_command(preset, variant, seed, out, steps)
    print("$", " ".join(command), flush=True)
    with open(out.parent / f"{out.name}.log", "a") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    if not (out / DIGEST_FILE).is_file():
        (out / DIGEST_FILE).write_text(preset_digest(preset) + "\n")


def newest_checkpoint(out: Path) -> tuple[Path, int] | None:
    """The run's checkpoint furthest into training among final.pt and latest.pt (a run extended past an earlier
    budget has a newer latest.pt than its old final.pt), with its env step; None before the first one."""
    found = []
    for name in ("final.pt", "latest.pt"):
        path = out / name
        if path.is_file():
            found.append((load_checkpoint(path)["global_step"], name == "final.pt", path))
    if not found:
        return None
    step, _, path = max(found)
    return path, int(step)


def evaluate(out: Path, checkpoint: Path, preset: str, episodes: int, average_last: int = 1) -> dict[str, dict]:
    """Export the checkpoint (with ``average_last`` > 1 the mean of the run's last checkpoints, robopg export
    --average-last) and evaluate the file in every cell; cached in RUN_DIR/bench_eval.json (per averaging)."""
    cache = out / ("bench_eval.json" if average_last == 1 else f"bench_eval_avg{average_last}.json")
    if cache.is_file() and cache.stat().st_mtime > checkpoint.stat().st_mtime:
        cached = json.loads(cache.read_text())
        if cached.get("episodes") == episodes and cached.get("checkpoint") == checkpoint.name:
            return cached["cells"]
    name = "policy.onnx" if average_last == 1 else f"policy_avg{average_last}.onnx"
    policy = export_policy(checkpoint, out / name, average_last=average_last).path
    spec = resolve_config(preset, None, {}).env.randomization
    cells = {TRAINING: evaluate_policy(policy, profile=None, randomization=spec, episodes=episodes,
                                       seed=EVAL_SEED).to_dict()}
    for profile in envs.list_profiles():
        cells[profile] = evaluate_policy(policy, profile=profile, episodes=episodes, seed=EVAL_SEED).to_dict()
    cache.write_text(json.dumps({"episodes": episodes, "checkpoint": checkpoint.name, "cells": cells}, indent=2))
    return cells


CURVE_POINTS = 200
"""At most this many points per learning curve in the report: a 5M-step run logs ~600-2,500 iterations, and the
JSON grew by ~10k lines per run when every one was kept."""


def curve(out: Path, up_to: int | None = None) -> dict[str, list[float]]:
    """Training success against env steps and against training minutes (collect + update time per row), up to
    env step ``up_to`` (the evaluated checkpoint's), thinned to ``CURVE_POINTS`` (``thin_curve``)."""
    rows = [r for r in read_metrics(out) if up_to is None or r["step"] <= up_to]
    minutes = np.cumsum([r["collect_seconds"] + r["update_seconds"] for r in rows]) / 60.0
    return thin_curve({"step": [r["step"] for r in rows], "minutes": minutes.tolist(),
                       "success": [r["success_rate"] for r in rows]})


def thin_curve(c: dict[str, list[float]], points: int = CURVE_POINTS) -> dict[str, list[float]]:
    """A curve of at most ``points`` points: consecutive iterations in equal blocks, each block's last step and
    minutes and its mean success (iterations without a finished episode, NaN, left out of the mean). A curve that
    short already is returned as it is, so thinning a thinned curve changes nothing."""
    n = len(c["step"])
    if n <= points:
        return c
    blocks = np.array_split(np.arange(n), points)
    success = np.asarray(c["success"], dtype=float)
    means = [float(np.nanmean(success[b])) if np.isfinite(success[b]).any() else float("nan") for b in blocks]
    return {"step": [c["step"][b[-1]] for b in blocks], "minutes": [c["minutes"][b[-1]] for b in blocks],
            "success": means}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["fetch-push"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--steps", type=int, help="training budget per run (default: the preset's total_steps)")
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes per cell")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "bench_manipulation")
    parser.add_argument("--report-only", action="store_true", help="no training: report the finished runs found")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench_manipulation")
    parser.add_argument("--average-last", type=int, nargs="+", default=[1], metavar="K",
                        help="also report each run's file exported with robopg export --average-last K (one row per "
                        "K; 1: the newest checkpoint alone, the default)")
    args = parser.parse_args()
    if min(args.average_last) < 1:
        parser.error(f"--average-last takes whole numbers >= 1, got {args.average_last}")

    results: dict = {"machine": f"{platform.machine()}, {platform.processor() or 'cpu'}", "episodes": args.episodes,
                     "eval_seed": EVAL_SEED, "runs": []}
    for preset in args.presets:
        for seed in args.seeds:
            for variant in args.variants:
                out = run_dir(args.runs_dir, preset, variant, seed)
                if not args.report_only:
                    train(preset, variant, seed, out, args.steps)
                newest = newest_checkpoint(out)
                if newest is None:
                    print(f"skipping {out}: not trained yet", flush=True)
                    continue
                checkpoint, steps = newest
                budget = args.steps or resolve_config(preset, None, {}).run.total_steps
                for average_last in args.average_last:
                    cells = evaluate(out, checkpoint, preset, args.episodes, average_last)
                    results["runs"].append({
                        "preset": preset, "variant": variant, "seed": seed, "preset_sha": run_digest(out, preset),
                        "run_dir": str(out), "average_last": average_last,
                        "steps": steps, "budget": budget, "checkpoint": checkpoint.name,
                        "train_minutes": curve(out, steps)["minutes"][-1],
                        "success": {cell: r["success_rate"] for cell, r in cells.items()},
                        "fallbacks": {cell: r["fallbacks"] for cell, r in cells.items()},
                        "curve": curve(out, steps),
                    })
                    print(f"{preset} {variant} seed {seed} (average of {average_last}): " + " ".join(
                        f"{cell}={r['success_rate']:.2f}" for cell, r in cells.items()), flush=True)
    results["runs"] = sorted(merge_recorded(args.out.with_suffix(".json"), results["runs"], row_key), key=table_order)
    write_report(results, args.out)


def write_report(results: dict, out: Path) -> None:
    for run in results["runs"]:  # rows recorded before the curves were thinned are thinned here
        run["curve"] = thin_curve(run["curve"])
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    out.with_suffix(".md").write_text(markdown(results))
    plot(results, out.with_suffix(".png"))
    print(f"wrote {out}.json, .md, .png")


def markdown(results: dict) -> str:
    cells = [TRAINING, *envs.list_profiles()]
    lines = ["# Manipulation benchmark", "",
             "Each cell: success of the exported ONNX file through the controller runtime (`robopg evaluate`'s code "
             f"path), {results['episodes']} deterministic episodes, evaluation seed {results['eval_seed']}; "
             "`training` is the preset's own randomisation at full width, the others the shipped reality profiles "
             "(envs/profiles/). [n] counts the safety layer's fallback ticks where there were any. Machine: "
             f"{results['machine']}, 2 cores.", "",
             "Command: `python scripts/bench_manipulation.py --presets PRESET --seeds ...` (see its --help).", ""]
    header = "| preset | variant | seed | steps | train min | " + " | ".join(cells) + " |"
    lines += [header, "|" + "---|" * (5 + len(cells))]
    for run in results["runs"]:
        unfinished = run["steps"] < run.get("budget", run["steps"])
        averaged = f", mean of last {run['average_last']}" if run.get("average_last", 1) > 1 else ""
        row = [run["preset"], run["variant"] + averaged + ("" if is_current(run) else " †"), str(run["seed"]),
               f"{run['steps'] / 1e6:.2f}M" + (f" of {run['budget'] / 1e6:g}M (unfinished)" if unfinished else ""),
               f"{run['train_minutes']:.0f}"]
        for cell in cells:
            value = run["success"].get(cell)
            falls = run["fallbacks"].get(cell, 0)
            row.append("" if value is None else f"{value:.2f}" + (f" [{falls}]" if falls else ""))
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Targets (the manipulation issue): " + "; ".join(
        [f"{p}: >= {a:.2f} in training, >= {b:.2f} under every profile" for p, (a, b) in TARGETS.items()]
        + [f"{p}: {what}" for p, what in MEASURED_ONLY.items()]), ""]
    earlier = sorted({(r["preset"], r["preset_sha"]) for r in results["runs"] if not is_current(r)})
    if earlier:
        lines += ["† trained on an earlier version of the preset (" + "; ".join(
            f"{p}: its file's sha256 began {sha}" for p, sha in earlier) + "; `git log -p robopg/presets/PRESET.toml` "
            "shows what changed); kept beside the current version's rows, left out of the orderings and the plot.", ""]
    lines += ordering_lines({"runs": [r for r in results["runs"] if is_current(r) and r.get("average_last", 1) == 1]})
    return "\n".join(lines)


def ordering_lines(results: dict) -> list[str]:
    """Per preset with all three of PENG_ORDER's variants: their success averaged over the shipped profiles and
    the seeds all three have (a variant with more seeds is not compared on its extra ones), and whether the ranking
    is Peng et al.'s (LSTM > feed-forward + history > feed-forward)."""
    lines = []
    for preset in sorted({r["preset"] for r in results["runs"]}):
        runs = [r for r in results["runs"] if r["preset"] == preset]
        seed_sets = [{r["seed"] for r in runs if r["variant"] == v} for v, _ in PENG_ORDER]
        seeds = sorted(set.intersection(*seed_sets))
        if not seeds:
            continue
        means = {v: float(np.mean([value for r in runs if r["variant"] == v and r["seed"] in seeds
                                   for cell, value in r["success"].items() if cell != TRAINING]))
                 for v, _ in PENG_ORDER}
        ranked = " > ".join(f"{name} {means[v]:.2f}" for v, name in sorted(PENG_ORDER, key=lambda p: -means[p[0]]))
        scores = [means[v] for v, _ in PENG_ORDER]
        verdict = "reproduces" if scores[0] > scores[1] > scores[2] else "does not reproduce"
        lines += [f"{preset}, mean success under the shipped profiles (seed{'s' if len(seeds) > 1 else ''} "
                  f"{', '.join(map(str, seeds))}): {ranked}; this {verdict} Peng et al. 2018's "
                  "ordering (LSTM > feed-forward + history > feed-forward).", ""]
    return lines


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    current = [r for r in results["runs"] if is_current(r) and r.get("average_last", 1) == 1]  # curves: one per run
    presets = sorted({r["preset"] for r in current}, key=preset_rank)
    if not presets:
        return
    fig, axes = plt.subplots(len(presets), 3, figsize=(16, 4.2 * len(presets)), squeeze=False)
    colors = {"randomized": "tab:blue", "none": "tab:orange", "lstm": "tab:green", "feedforward": "tab:purple",
              "adr": "tab:red"}
    cells = [TRAINING, *envs.list_profiles()]
    for row, preset in enumerate(presets):
        runs = [r for r in current if r["preset"] == preset]
        for col, x in enumerate(("step", "minutes")):
            ax = axes[row][col]
            for run in runs:
                c = run["curve"]
                xs = np.asarray(c[x], dtype=float) / (1e6 if x == "step" else 1.0)
                ys = np.asarray(c["success"], dtype=float)
                ok = ~np.isnan(ys)
                ax.plot(xs[ok], _smooth(ys[ok]), color=colors[run["variant"]], alpha=0.85,
                        label=f"{run['variant']} s{run['seed']}")
            ax.set_xlabel("env steps (M)" if x == "step" else "training minutes (2 cores)")
            ax.set_ylabel("training success")
            ax.set_ylim(0, 1)
            ax.set_title(f"{preset}: training success")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        ax = axes[row][2]
        width = 0.8 / max(1, len(runs))
        for k, run in enumerate(runs):
            values = [run["success"].get(cell, np.nan) for cell in cells]
            ax.bar(np.arange(len(cells)) + k * width, values, width, color=colors[run["variant"]],
                   alpha=0.5 + 0.5 * (k % 2), label=f"{run['variant']} s{run['seed']}")
        ax.set_xticks(np.arange(len(cells)) + 0.4 - width / 2, cells, rotation=45, ha="right", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title(f"{preset}: exported file, success per profile")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _smooth(y: np.ndarray, k: int = 9) -> np.ndarray:
    if y.size < k:
        return y
    return np.convolve(np.pad(y, (k // 2, k // 2), mode="edge"), np.ones(k) / k, mode="valid")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
