"""A recurrent policy learns: PPO with an LSTM actor on FetchReachDense-v4 (real MuJoCo), judged through the exported
file (state inputs and outputs) run by the controller runtime, which holds the state, as on the robot."""

from pathlib import Path

from robopg.config import EnvConfig, PolicyConfig, RunConfig, TrainConfig
from robopg.evaluate import EvalResult, evaluate_policy
from robopg.export import export_policy
from robopg.runners import Trainer

# Budget and threshold from the spread over seeds 0-4 (success of the exported file over 20 nominal episodes,
# evaluation seed 1234, through train_and_evaluate below, on a 2-core machine at load average ~11):
#   16,384 steps: 1.00 / 0.65 / 0.85 / 0.95 / 0.95      24,576: 1.00 x 5      32,768: 1.00 x 5
#   28,672 (this test; `python scripts/learning_spread.py --cases lstm-fetch-reach --seeds 0 1 2 3 4`): 1.00 x 5,
#   47 / 66 / 76 / 70 / 63 s each under that load (train + export + evaluate; seed 0 is the test's)
# Re-measured with PPO's linear learning-rate decay (the default since the algorithm round) at 28,672 steps: 1.00
# on each of seeds 0-4 as is, with OPENBLAS_CORETYPE unset, and that under taskset -c 0 (15 of 15 runs).
# 28,672 steps lie between two budgets where every seed reached 1.00 and 75% above the one where the worst seed fell
# to 0.65; the threshold 0.9 leaves 0.1 below the worst seed at the budget.
STEPS = 28_672


def reach_config(seed: int = 0, steps: int = STEPS) -> TrainConfig:
    return TrainConfig(
        env=EnvConfig(task="FetchReachDense-v4", num_envs=16, randomization="none"),
        policy=PolicyConfig(recurrent="lstm", rnn_hidden_size=64),
        run=RunConfig(total_steps=steps, seed=seed, checkpoint_every=0),
    )


def train_and_evaluate(tmp_path: Path, seed: int = 0, steps: int = STEPS) -> EvalResult:
    run_dir = tmp_path / f"lstm_s{seed}_{steps}"
    Trainer(reach_config(seed, steps), run_dir, progress=False).train()
    exported = export_policy(run_dir, run_dir / "policy.onnx")
    assert exported.metadata.recurrence is not None and exported.parity_max_abs_diff <= 1e-5
    return evaluate_policy(exported.path, profile="nominal", episodes=20, seed=1234)


def trained_success(tmp_path: Path, seed: int = 0) -> float:
    """What the test judges (scripts/learning_spread.py measures it over seeds)."""
    return train_and_evaluate(tmp_path, seed).success_rate


def test_lstm_ppo_reaches_the_goal_on_fetch_reach_through_the_exported_file(tmp_path):
    trained = train_and_evaluate(tmp_path)
    assert trained.success_rate >= 0.9, trained
    assert trained.fallbacks == 0
