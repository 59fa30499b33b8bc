"""Every algorithm learns InvertedPendulum-v5 (real MuJoCo) through the same train -> export -> evaluate path.

The pendulum is the cheapest continuous task with a clear learning signal: an untrained policy balances for
~5-10 steps (return ~5-10), a solved one for the full 1000. Each algorithm is judged on its exported file,
run by the controller runtime for 10 deterministic episodes. The thresholds sit below what two seeds reached
when they were set (noted per line) so that a slower-but-correct learner passes and a broken one cannot.
"""

import pytest

from robopg.config import TrainConfig
from robopg.evaluate import evaluate_policy
from robopg.export import export_policy
from robopg.runners import Trainer

TASK = "InvertedPendulum-v5"

# algo, total steps, overrides of its section, threshold on the deterministic mean return.
CASES = [
    ("ppo", 30_000, {"gamma": 0.99}, 900.0),
    ("ppo-kl", 30_000, {"gamma": 0.99}, 900.0),
    ("trpo", 30_000, {"gamma": 0.99}, 900.0),
    ("reinforce", 60_000, {}, 100.0),
    ("a2c", 60_000, {"gamma": 0.99, "advantage": "gae", "rollout_steps": 16}, 150.0),
]


def train_and_deploy(tmp_path, algo: str, steps: int, section: dict, num_envs: int = 8, seed: int = 0):
    cfg = TrainConfig().replace({
        "env": {"task": TASK, "num_envs": num_envs, "randomization": "none"},
        "run": {"algo": algo, "total_steps": steps, "seed": seed, "checkpoint_every": 0},
        algo.replace("-", "_"): section,
    })
    Trainer(cfg, tmp_path / "run", progress=False).train()
    policy = export_policy(tmp_path / "run", tmp_path / "policy.onnx").path
    return evaluate_policy(policy, task=TASK, profile=None, episodes=10, seed=100)


@pytest.mark.parametrize(("algo", "steps", "section", "threshold"), CASES, ids=[c[0] for c in CASES])
def test_algorithm_learns_and_deploys(tmp_path, algo, steps, section, threshold):
    result = train_and_deploy(tmp_path, algo, steps, section)
    assert result.mean_return >= threshold, result
    assert result.fallbacks == 0


# steps, section overrides, num_envs
A3C_CASE = (60_000, {"gamma": 0.99, "advantage": "gae", "rollout_steps": 16, "workers": 2}, 16)


def test_a3c_learns_and_deploys(tmp_path):
    # Hogwild updates interleave nondeterministically, so A3C gets a larger batch per worker and a threshold
    # at ~5x the untrained return; measured 70-1000 over four runs.
    result = train_and_deploy(tmp_path, "a3c", *A3C_CASE)
    assert result.mean_return >= 50.0, result
