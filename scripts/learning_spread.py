"""The spread of every learning test in `make test` over seeds: sets their budgets and thresholds.

A learning test's threshold must hold on any CPU (BLAS, MuJoCo and torch kernels differ, and with them every
trajectory), so it is set from the worst of several seeds here, with margin, measured three ways: as the shell
has it, with OPENBLAS_CORETYPE unset (OpenBLAS picks its kernels from the CPU), and with that under
`taskset -c 0` (one core: different thread counts in MuJoCo and torch). Run each way and compare:

    python scripts/learning_spread.py --seeds 0 1 2 3 4 --out /tmp/spread_default.json
    env -u OPENBLAS_CORETYPE python scripts/learning_spread.py --seeds 0 1 2 3 4 --out /tmp/spread_unset.json
    env -u OPENBLAS_CORETYPE taskset -c 0 python scripts/learning_spread.py --seeds 0 1 2 3 4 --out /tmp/spread_core0.json

Each case is run through the same helper its test uses (tests/robopg/algos/test_algorithms_learn.py,
tests/robopg/test_learning.py, tests/robopg/test_recurrent_learning.py), one seed at a time; the tests' own seeds
are among the seeds here (the InvertedPendulum tests judge the better of seeds 0 and 1).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(relative: str):
    spec = importlib.util.spec_from_file_location(Path(relative).stem, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cases() -> dict:
    """name -> callable(tmp_dir, seed) -> the number the test judges."""
    algos = _load("tests/robopg/algos/test_algorithms_learn.py")
    reach = _load("tests/robopg/test_learning.py")
    recurrent = _load("tests/robopg/test_recurrent_learning.py")
    distributed = _load("tests/robopg/test_distributed.py")
    out = {}
    for case in algos.CASES:
        algo, steps, section = case[0], case[1], case[2]
        out[algo] = (lambda tmp, seed, a=algo, n=steps, s=section:
                     algos.train_and_deploy(Path(tmp), a, n, s, seed=seed).mean_return)
    out["a3c"] = lambda tmp, seed: algos.train_and_deploy(Path(tmp), "a3c", *algos.A3C_CASE, seed=seed).mean_return
    out["ppo-fetch-reach"] = lambda tmp, seed: reach.trained_success(Path(tmp), seed)
    out["lstm-fetch-reach"] = lambda tmp, seed: recurrent.trained_success(Path(tmp), seed)
    out["ppo-2-ranks-fetch-reach"] = lambda tmp, seed: distributed.two_rank_reach(Path(tmp), seed)[2]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--cases", nargs="+", help="only these cases (default: all)")
    parser.add_argument("--out", type=Path, help="write the results as JSON")
    args = parser.parse_args()
    all_cases = cases()
    names = args.cases or list(all_cases)
    results: dict[str, list[float]] = {}
    for name in names:
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                value = float(all_cases[name](tmp, seed))
            results.setdefault(name, []).append(value)
            print(f"{name:16s} seed {seed}: {value:8.2f}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    env = {"OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"), "cpus": sorted(os.sched_getaffinity(0))}
    print(f"\n{env}")
    for name, values in results.items():
        print(f"{name:16s} min {min(values):8.2f}  median {sorted(values)[len(values) // 2]:8.2f}  max {max(values):8.2f}")
    if args.out:
        args.out.write_text(json.dumps({"env": env, "seeds": args.seeds, "results": results}, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
