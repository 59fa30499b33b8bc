"""The update on 1 torch thread against N (``--update-threads``), same preset, alternated rounds, one machine.

Trains the preset for a short budget with each setting in turn (``robopg train --preset P --total-steps S
--update-threads T --checkpoint-every 0``) and reports the mean update and collection seconds per iteration
(metrics.csv, after the first 3 iterations) and the steps/s they give. Run it on a quiet machine: the figure is
the ratio between the settings within one run (docs/batched_engine.md).

    python scripts/bench_update_threads.py --preset fetch-push --threads 1 2 --rounds 2
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(preset: str, steps: int, threads: int, out: Path) -> tuple[float, float, float]:
    """(update s, collect s, steps/s) per iteration of one short training run."""
    subprocess.run([sys.executable, "-m", "robopg", "train", "--preset", preset, "--total-steps", str(steps),
                    "--update-threads", str(threads), "--checkpoint-every", "0", "--no-progress", "--out", str(out)],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = list(csv.DictReader((out / "metrics.csv").open()))[3:]
    update = sum(float(r["update_seconds"]) for r in rows) / len(rows)
    collect = sum(float(r["collect_seconds"]) for r in rows) / len(rows)
    steps_per_iteration = (int(rows[-1]["step"]) - int(rows[0]["step"])) / max(1, len(rows) - 1)
    return update, collect, steps_per_iteration / (update + collect)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="fetch-push")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=61_440, help="training steps per run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(1, args.rounds + 1):
            for threads in args.threads:
                update, collect, rate = one_run(args.preset, args.steps, threads, Path(tmp) / f"r{round_}_t{threads}")
                print(f"round {round_} update_threads {threads}: update {update:.3f} s, collect {collect:.3f} s, "
                      f"{rate:,.0f} steps/s", flush=True)


if __name__ == "__main__":
    main()
