"""Sim-to-real transfer report on the presets: what each part of a recipe buys on the simulated robot's profiles.

For each preset (fetch-reach, fetch-push, fetch-pick-and-place; robopg/presets/) at its own budget, this trains
one seed of each variant through the `robopg` CLI:

    none         the preset without randomisation (--randomization none --no-curriculum)
    randomized   the preset as shipped: wide randomisation ramped in by its curriculum, the last actions in the
                 input, asymmetric critic where the preset has one
    adr          automatic domain randomisation instead of the curriculum (--adr --no-curriculum; the spec's
                 ranges are ADR's limits)
    lstm         the preset with an LSTM actor (--recurrent lstm): memory, how a policy infers the robot it is on
                 (Peng et al. 2018)
    feedforward  the preset without the action history (--action-history 0)

then exports each run to ONNX and evaluates the file through the controller runtime (deterministic actions, 50
episodes per cell, evaluation seed 10000) in the preset's training distribution at full width and under every
shipped reality profile (envs/profiles/). The runs and their evaluations are scripts/bench_manipulation.py's
(same directories, same caches): a run either script finished is reused, an interrupted one is resumed.

    python scripts/transfer_report.py                                   # every preset and variant (many hours)
    python scripts/transfer_report.py --presets fetch-reach             # ~5 min
    python scripts/transfer_report.py --report-only                     # tables from the runs there are

Writes docs/transfer_report.json (every cell), docs/transfer_report.md (tables, what the unrandomised policy
loses and whether each variant keeps it, ADR's final ranges, Peng et al.'s ordering) and docs/transfer_report.png.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

import bench_manipulation as bench  # noqa: E402  (the runs, their training and evaluation are shared)

import envs  # noqa: E402
from robopg.config import resolve_config  # noqa: E402

PRESETS = ("fetch-reach", "fetch-push", "fetch-pick-and-place")
VARIANTS = {  # key -> label, in table order; the flags are bench_manipulation.VARIANTS'
    "none": "(a) no randomisation",
    "randomized": "(b) preset: randomisation + curriculum + action history",
    "adr": "(c) ADR instead of the curriculum",
    "lstm": "(d) LSTM actor",
    "feedforward": "(e) no action history",
}
DROP = 0.1  # "drops clearly": the unrandomised policy loses more than this much success against nominal
GOAL = 0.8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes per cell")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "bench_manipulation")
    parser.add_argument("--report-only", action="store_true",
                        help="no training: report the runs there are (an unfinished one at its newest checkpoint)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "transfer_report")
    args = parser.parse_args()

    report: dict = {"command": " ".join(["python scripts/transfer_report.py", *sys.argv[1:]]),
                    "machine": f"{platform.machine()}, {os.cpu_count()} cores", "seed": args.seed,
                    "episodes": args.episodes, "eval_seed": bench.EVAL_SEED, "cells": [bench.TRAINING,
                                                                                       *envs.list_profiles()],
                    "runs": [], "missing": []}
    for preset in args.presets:
        budget = resolve_config(preset, None, {}).run.total_steps
        for variant in args.variants:
            out = bench.run_dir(args.runs_dir, preset, variant, args.seed)
            if not args.report_only:
                bench.train(preset, variant, args.seed, out, None)
            newest = bench.newest_checkpoint(out)
            if newest is None:
                command = " ".join(["python", *bench.train_command(preset, variant, args.seed, out, None)[1:]])
                report["missing"].append({"preset": preset, "variant": variant,
                                          "budget": budget,
                                          "command": command.replace(f"{ROOT}/", "")})
                continue
            checkpoint, steps = newest
            cells = bench.evaluate(out, checkpoint, preset, args.episodes)
            report["runs"].append({
                "preset": preset, "variant": variant, "seed": args.seed, "preset_sha": bench.run_digest(out, preset),
                "run_dir": str(out), "steps": steps,
                "budget": budget,
                "train_minutes": bench.curve(out, steps)["minutes"][-1],
                "training_success": training_success(out, steps),
                "success": {cell: r["success_rate"] for cell, r in cells.items()},
                "fallbacks": {cell: r["fallbacks"] for cell, r in cells.items()},
                "adr_ranges": adr_ranges(out) if variant == "adr" else None,
            })
            print(f"{preset} {variant}: " + " ".join(f"{c}={r['success_rate']:.2f}" for c, r in cells.items()),
                  flush=True)
    merged = bench.merge_recorded(args.out.with_suffix(".json"), report["runs"], row_key)
    report["runs"] = sorted((r for r in merged if r["seed"] == args.seed), key=report_order)
    current = {(r["preset"], r["variant"]) for r in report["runs"] if bench.is_current(r)}
    report["missing"] = [m for m in report["missing"] if (m["preset"], m["variant"]) not in current]
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    args.out.with_suffix(".md").write_text(markdown(report))
    plot(report, args.out.with_suffix(".png"))
    print(f"wrote {args.out}.json, .md, .png")


def row_key(run: dict) -> tuple:
    """A row per seed, preset version and variant; see bench_manipulation.merge_recorded."""
    return run["preset"], run["variant"], run["seed"], run.get("preset_sha")


def report_order(run: dict) -> tuple:
    """Presets in the benchmark's order, the current preset version before earlier ones, variants in table order."""
    return bench.preset_rank(run["preset"]), not bench.is_current(run), list(VARIANTS).index(run["variant"])


def training_success(out: Path, up_to: int) -> float:
    """Success over the last 10 logged iterations up to env step ``up_to`` (metrics.csv)."""
    values = [s for s in bench.curve(out, up_to)["success"] if not math.isnan(s)][-10:]
    return float(np.mean(values)) if values else float("nan")


def adr_ranges(out: Path) -> dict[str, list[float]]:
    """ADR's final ranges (from the run's last metrics row) and the share of the limits they cover."""
    last = bench.read_metrics(out)[-1]
    names = sorted({k[4:-4] for k in last if k.startswith("adr_") and k.endswith("_low")})
    return {n: [float(last[f"adr_{n}_low"]), float(last[f"adr_{n}_high"])] for n in names} | {
        "coverage": [float(last["adr_coverage"])]}


def cell(success: float | None, fallbacks: int) -> str:
    return "" if success is None else f"{success:.2f}" + (f" [{fallbacks}]" if fallbacks else "")


def markdown(report: dict) -> str:
    cells = report["cells"]
    lines = [
        "# Sim-to-real transfer report", "",
        f"Command: `{report['command']}` ({report['machine']}).", "",
        f"Each row: one preset (robopg/presets/) trained at its own budget, seed {report['seed']}, with one change "
        "(the variant); the runs are `scripts/bench_manipulation.py`'s. Each cell is the success rate of the exported "
        "ONNX file run by the controller runtime (deterministic actions) over "
        f"{report['episodes']} episodes (evaluation seed {report['eval_seed']}): `training` in the preset's own "
        "randomisation at full width, the others under the shipped reality profiles (envs/profiles/). [n] counts "
        "the ticks where the runtime's safety layer sent its safe action instead (almost all for observations "
        "outside the range the policy's normaliser saw in training). `train success` is the training log's last "
        "10 iterations, in the (curriculum's current) training distribution.", "",
    ]
    for preset, sha in dict.fromkeys((r["preset"], r["preset_sha"]) for r in report["runs"]):
        runs = {r["variant"]: r for r in report["runs"] if (r["preset"], r["preset_sha"]) == (preset, sha)}
        if sha == bench.preset_digest(preset):
            lines += [f"## {preset}", ""]
        else:
            lines += [f"## {preset}, an earlier version of the preset", "",
                      f"Trained on the preset file whose sha256 began {sha}, not the one shipped now (`git log -p "
                      f"robopg/presets/{preset}.toml` shows what changed); kept for its comparison between variants.",
                      ""]
        lines += ["| variant | steps | train min | train success | " + " | ".join(cells) + " |",
                  "|---|" + "---|" * (3 + len(cells))]
        for key, label in VARIANTS.items():
            if key not in runs:
                continue
            run = runs[key]
            unfinished = run["steps"] < run["budget"]
            steps = f"{run['steps'] / 1e6:.2f}M" + (f" of {run['budget'] / 1e6:g}M" if unfinished else "")
            lines.append(f"| {label} | {steps} | {run['train_minutes']:.0f} | {run['training_success']:.2f} | "
                         + " | ".join(cell(run["success"].get(c), run["fallbacks"].get(c, 0)) for c in cells) + " |")
        lines += ["", *goal_lines(runs, cells)]
        if "adr" in runs and runs["adr"]["adr_ranges"]:
            ranges = dict(runs["adr"]["adr_ranges"])
            coverage = ranges.pop("coverage")[0]
            lines += [f"ADR's final ranges ({coverage:.0%} of the limits covered on average): "
                      + ", ".join(f"{n} [{lo:g}, {hi:g}]" for n, (lo, hi) in ranges.items()), ""]
        lines += bench.ordering_lines({"runs": [dict(r, seed=report["seed"]) for r in runs.values()]})
    if report["missing"]:
        lines += ["## Not run", "", "These cells are not in the tables above; each trains with:", ""]
        lines += [f"- {m['preset']} {m['variant']} ({m['budget'] / 1e6:g}M steps): `{m['command']}`"
                  for m in report["missing"]]
        lines += [""]
    return "\n".join(lines)


def goal_lines(runs: dict[str, dict], cells: list[str]) -> list[str]:
    """Where the unrandomised policy drops against nominal, and whether each other variant keeps >= GOAL there."""
    if "none" not in runs:
        return []
    base = runs["none"]["success"]["nominal"]
    dropped = [c for c in cells if c not in ("nominal", bench.TRAINING) and runs["none"]["success"][c] < base - DROP]
    if not dropped:
        return [f"The unrandomised policy does not drop by more than {DROP} on any profile (nominal {base:.2f}).", ""]
    out = [f"The unrandomised policy drops by more than {DROP} (from {base:.2f} nominal) on: {', '.join(dropped)}."]
    for key, label in VARIANTS.items():
        if key == "none" or key not in runs:
            continue
        short = [f"{c} {runs[key]['success'][c]:.2f}" for c in dropped if runs[key]["success"][c] < GOAL]
        out.append(f"- {label}: " + (f"keeps >= {GOAL} on all of them." if not short
                                     else f"falls short of {GOAL} on " + ", ".join(short) + "."))
    return [*out, ""]


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    current = [r for r in report["runs"] if bench.is_current(r)]  # earlier preset versions are in the tables only
    presets = list(dict.fromkeys(r["preset"] for r in current))
    if not presets:
        return
    cells = report["cells"]
    fig, axes = plt.subplots(len(presets), 1, figsize=(14, 3.8 * len(presets)), squeeze=False)
    x = np.arange(len(cells))
    for ax, preset in zip(axes[:, 0], presets, strict=True):
        runs = [r for key in VARIANTS for r in current if r["preset"] == preset and r["variant"] == key]
        width = 0.8 / len(runs)
        for k, run in enumerate(runs):
            ax.bar(x + (k - (len(runs) - 1) / 2) * width, [run["success"].get(c, np.nan) for c in cells], width,
                   label=VARIANTS[run["variant"]])
        ax.axhline(GOAL, color="k", lw=0.8, ls="--")
        ax.set_xticks(x, cells, rotation=20, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("success rate")
        ax.set_title(f"{preset}: exported file through the controller runtime, seed {report['seed']}, "
                     f"{report['episodes']} episodes per cell")
        ax.legend(fontsize=7, ncol=len(runs), loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
