"""PPO learns: FetchReachDense-v4 (real MuJoCo), judged through the exported file and the controller runtime."""

from robopg.config import EnvConfig, RunConfig, TrainConfig
from robopg.evaluate import evaluate_policy
from robopg.export import export_policy
from robopg.runners import Trainer


def test_ppo_reaches_the_goal_on_fetch_reach(tmp_path):
    cfg = TrainConfig(
        env=EnvConfig(task="FetchReachDense-v4", num_envs=16, randomization="none"),
        run=RunConfig(total_steps=32_768, seed=0, checkpoint_every=0),
    )
    before = export_policy(_train(cfg, tmp_path / "untrained", steps=1), tmp_path / "untrained.onnx")
    untrained = evaluate_policy(before.path, profile="nominal", episodes=20, seed=1234)
    trained = evaluate_policy(export_policy(_train(cfg, tmp_path / "run"), tmp_path / "p.onnx").path,
                              profile="nominal", episodes=20, seed=1234)
    assert untrained.success_rate <= 0.2
    assert trained.success_rate >= 0.9, trained
    assert trained.mean_return > untrained.mean_return + 5.0


def _train(cfg: TrainConfig, run_dir, steps: int | None = None):
    if steps is not None:
        cfg = cfg.replace({"run": {"total_steps": steps}})
    Trainer(cfg, run_dir, progress=False).train()
    return run_dir
