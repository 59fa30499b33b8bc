"""Every algorithm learns InvertedPendulum-v5 (real MuJoCo) through the same train -> export -> evaluate path.

The pendulum is the cheapest continuous task with a clear learning signal: an untrained policy balances for
~5-10 steps (return ~5-10), a solved one for the full 1000. Each algorithm is judged on its exported file, run
by the controller runtime for 10 deterministic episodes.

Floating point differs between CPUs (BLAS, MuJoCo and torch kernels), so on another machine every trajectory
differs and a seed's result is a fresh draw from the algorithm's spread. Budgets and thresholds are therefore set
from the spread over seeds 0-4 measured three ways (as is, OPENBLAS_CORETYPE unset, and that under taskset -c 0;
scripts/learning_spread.py), written beside each case, and a case passes when the better of two seeds clears its
threshold (the second seed runs only when the first falls short). A learner with its loss sign flipped stays at
the untrained ~5 on both seeds and fails every case.
"""

import pytest

from policies_export.safety import SafetyConfig
from robopg.config import TrainConfig
from robopg.evaluate import EvalResult, evaluate_policy
from robopg.export import export_policy
from robopg.runners import Trainer

TASK = "InvertedPendulum-v5"
SEEDS = (0, 1)
# The deployed file is judged on learning, not on this machine's scheduling: with the default limit of one control
# period (40 ms), a read delayed by a loaded CPU is a slow_read fallback that can drop the pole.
UNHURRIED = SafetyConfig(max_read_s=10.0)

# algo, total steps, overrides of its section, threshold on the deterministic mean return.
CASES = [
    # spread (seeds 0-4, each of the three ways): 1000 1000 1000 1000 1000 (KL-adaptive rate before: 880 1000 1000 217
    # 1000, the mean policy fell where the stochastic one balanced)
    ("ppo", 30_000, {"gamma": 0.99}, 500.0),
    # spread (each way): 1000 1000 1000 1000 1000 (lr 3e-4 at 30k before: 137 1000 1000 1000 1000)
    ("ppo-kl", 50_000, {"gamma": 0.99}, 500.0),
    # spread (each way): 1000 1000 1000 1000 1000
    ("trpo", 30_000, {"gamma": 0.99}, 500.0),
    # spread (each way, identical; init_log_std -1.0, its default now): 1000 340 1000 1000 1000 (at -0.5 before: 553 583
    # 426 665 813 / 553 583 426 450 813 under taskset -c 0); the worst seed 3.4x the threshold
    ("reinforce", 60_000, {}, 100.0),
    # spread (each way, identical; init_log_std -1.0): 1000 988 237 1000 78 (at -0.5: 1000 745 437 61 60); the worst
    # seed still 13x the untrained return and 3x the threshold
    ("a2c", 60_000, {"gamma": 0.99, "advantage": "gae", "rollout_steps": 16}, 25.0),
]


def train_and_deploy(tmp_path, algo: str, steps: int, section: dict, num_envs: int = 8, seed: int = 0,
                     policy: dict | None = None) -> EvalResult:
    """Train ``algo`` on InvertedPendulum-v5 with ``section`` (and ``policy``) over its defaults, export, and run the
    file for 10 deterministic episodes (also scripts/learning_spread.py's and scripts/sweep_settings.py's runs)."""
    cfg = TrainConfig().replace({
        "env": {"task": TASK, "num_envs": num_envs, "randomization": "none"},
        "run": {"algo": algo, "total_steps": steps, "seed": seed, "checkpoint_every": 0},
        algo.replace("-", "_"): section, "policy": policy or {},
    })
    Trainer(cfg, tmp_path / "run", progress=False).train()
    policy = export_policy(tmp_path / "run", tmp_path / "policy.onnx").path
    return evaluate_policy(policy, task=TASK, profile=None, episodes=10, seed=100, safety=UNHURRIED)


def best_of_seeds(tmp_path, threshold: float, *args) -> tuple[EvalResult, list[float]]:
    """The best deployed result over SEEDS, stopping at the first seed that clears ``threshold``."""
    results = []
    for seed in SEEDS:
        results.append(train_and_deploy(tmp_path / f"seed{seed}", *args, seed=seed))
        if results[-1].mean_return >= threshold:
            break
    return max(results, key=lambda r: r.mean_return), [r.mean_return for r in results]


@pytest.mark.parametrize(("algo", "steps", "section", "threshold"), CASES, ids=[c[0] for c in CASES])
def test_algorithm_learns_and_deploys(tmp_path, algo, steps, section, threshold):
    best, returns = best_of_seeds(tmp_path, threshold, algo, steps, section)
    assert best.mean_return >= threshold, f"{algo}: deployed returns {returns} over seeds {SEEDS[:len(returns)]}"
    assert best.fallbacks == 0


# steps, section overrides, num_envs; threshold
A3C_CASE = (60_000, {"gamma": 0.99, "advantage": "gae", "rollout_steps": 16, "workers": 2}, 16)
A3C_THRESHOLD = 25.0


def test_a3c_learns_and_deploys(tmp_path):
    # Hogwild updates interleave nondeterministically, so every run is a fresh draw even on one machine.
    # spread, seeds 0-4, at a3c's learning rate 5e-4 (its default now): 47 60 38 68 55 (OPENBLAS_CORETYPE unset),
    # 39 68 39 332 52 (and taskset -c 0); at 1e-3 before: 98 1000 81 896 74 / 76 385 69 208 97 / 125 939 1000 500 40;
    # at init_log_std -0.5: 298 273 34 1000 83 / 1000 425 194 523 545 / 143 1000 165 345 634. Threshold 25, 5x the
    # untrained return, under the worst run (38): both seeds must fall below it
    best, returns = best_of_seeds(tmp_path, A3C_THRESHOLD, "a3c", *A3C_CASE)
    assert best.mean_return >= A3C_THRESHOLD, f"a3c: deployed returns {returns}"
