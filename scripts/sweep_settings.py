"""Deployed return on InvertedPendulum-v5 against the initial policy width and other settings of an algorithm.

Each run trains through the learning tests' own helper (tests/robopg/algos/test_algorithms_learn.py:
InvertedPendulum-v5, 8 envs, no randomisation, exported file through the controller runtime, 10 deterministic
episodes) with the algorithm's defaults plus gamma 0.99, one variant of settings and one `[policy] init_log_std`
(``--values``; unset: the algorithm's default). A variant is ``NAME:KEY=VALUE,...`` over the algorithm's config
section (``policy.KEY`` for the [policy] section); ``NAME:`` alone is the defaults. It measured the a2c, a3c and
reinforce initial width and a2c's settings (docs/bench_algorithms.md):

    python scripts/sweep_settings.py --algos a2c a3c --steps 100000 --values -0.5 -1.1 --seeds 0 1 2 3 4
    python scripts/sweep_settings.py --algos reinforce --steps 200000 --values -0.5 -1.1 --seeds 0 1 2
    python scripts/sweep_settings.py --algos a2c --seeds 0 1 2 3 4 --variant defaults: --variant lr5e-4:learning_rate=5e-4
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _learn_tests():
    spec = importlib.util.spec_from_file_location("learn", ROOT / "tests/robopg/algos/test_algorithms_learn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_variant(text: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``NAME:KEY=VALUE,...`` -> (name, algorithm-section overrides, policy overrides); values are JSON where they
    parse (numbers, true/false) and strings otherwise."""
    name, sep, settings = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"variant '{text}': expected NAME:KEY=VALUE,... (NAME: for the defaults)")
    section: dict[str, Any] = {}
    policy: dict[str, Any] = {}
    for item in filter(None, settings.split(",")):
        key, eq, raw = item.partition("=")
        if not eq:
            raise argparse.ArgumentTypeError(f"variant '{text}': '{item}' is not KEY=VALUE")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        target, key = (policy, key[len("policy."):]) if key.startswith("policy.") else (section, key)
        target[key] = value
    return name, section, policy


def deployed_return(algo: str, steps: int, seed: int, section: dict[str, Any], policy: dict[str, Any]) -> float:
    """The exported file's mean return after ``steps`` of ``algo`` with these overrides."""
    section = {"gamma": 0.99, **({"workers": 2} if algo == "a3c" else {}), **section}
    with tempfile.TemporaryDirectory() as tmp:
        return float(_learn_tests().train_and_deploy(Path(tmp), algo, steps, section, seed=seed,
                                                     policy=policy).mean_return)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algos", nargs="+", default=["a2c"])
    parser.add_argument("--values", type=float, nargs="+", help="init_log_std values (default: the algorithm's)")
    parser.add_argument("--variant", type=parse_variant, action="append", dest="variants",
                        help="NAME:KEY=VALUE,... settings over the defaults (repeatable; default: the defaults)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--out", type=Path, help="write the results as JSON")
    args = parser.parse_args()
    variants = args.variants or [("defaults", {}, {})]
    widths = args.values or [None]
    results: dict[str, dict[str, list[float]]] = {}
    for algo in args.algos:
        for name, section, policy in variants:
            for width in widths:
                label = name if width is None else f"{name} init_log_std {width:g}"
                for seed in args.seeds:
                    t0 = time.perf_counter()
                    overrides = policy if width is None else {**policy, "init_log_std": width}
                    ret = deployed_return(algo, args.steps, seed, section, overrides)
                    results.setdefault(algo, {}).setdefault(label, []).append(ret)
                    print(f"{algo:10s} {label} seed {seed}: {ret:7.1f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    for algo, by_label in results.items():
        for label, returns in by_label.items():
            solved = sum(r >= 1000 for r in returns)
            print(f"{algo:10s} {label}: {' '.join(f'{r:.0f}' for r in returns)}  (mean {sum(returns) / len(returns):.0f}, "
                  f"{solved} of {len(returns)} at 1000)")
    if args.out:
        args.out.write_text(json.dumps({"steps": args.steps, "seeds": args.seeds, "results": results}, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
