"""Deployed return against the policy's initial width (`[policy] init_log_std`) on InvertedPendulum-v5.

Each run trains through the learning tests' own helper (tests/robopg/algos/test_algorithms_learn.py:
InvertedPendulum-v5, 8 envs, no randomisation, exported file through the controller runtime, 10 deterministic
episodes) with the algorithm's defaults plus gamma 0.99 and the given init_log_std. It measured the a2c, a3c and
reinforce defaults (docs/bench_algorithms.md, "The initial policy width"):

    python scripts/sweep_init_std.py --algos a2c a3c --steps 100000 --values -0.5 -1.1 --seeds 0 1 2 3 4
    python scripts/sweep_init_std.py --algos reinforce --steps 200000 --values -0.5 -1.1 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _learn_tests():
    spec = importlib.util.spec_from_file_location("learn", ROOT / "tests/robopg/algos/test_algorithms_learn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def deployed_return(algo: str, steps: int, init_log_std: float, seed: int) -> float:
    """The exported file's mean return after ``steps`` of ``algo`` from ``init_log_std``."""
    section = {"gamma": 0.99, **({"workers": 2} if algo == "a3c" else {})}
    with tempfile.TemporaryDirectory() as tmp:
        return float(_learn_tests().train_and_deploy(Path(tmp), algo, steps, section, seed=seed,
                                                     policy={"init_log_std": init_log_std}).mean_return)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algos", nargs="+", default=["a2c"])
    parser.add_argument("--values", type=float, nargs="+", default=[-0.5, -1.1], help="init_log_std values")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--out", type=Path, help="write the results as JSON")
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {}
    for algo in args.algos:
        for value in args.values:
            for seed in args.seeds:
                t0 = time.perf_counter()
                ret = deployed_return(algo, args.steps, value, seed)
                results.setdefault(algo, {}).setdefault(str(value), []).append(ret)
                print(f"{algo:10s} init_log_std {value:5.2f} seed {seed}: {ret:7.1f} ({time.perf_counter() - t0:.0f} s)",
                      flush=True)
    for algo, by_value in results.items():
        for value, returns in by_value.items():
            solved = sum(r >= 1000 for r in returns)
            print(f"{algo:10s} {value:>6s}: {' '.join(f'{r:.0f}' for r in returns)}  (mean {sum(returns) / len(returns):.0f}, "
                  f"{solved} of {len(returns)} at 1000)")
    if args.out:
        args.out.write_text(json.dumps({"steps": args.steps, "seeds": args.seeds, "results": results}, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
