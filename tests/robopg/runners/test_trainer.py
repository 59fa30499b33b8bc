"""Trainer on real MuJoCo: logs, atomic checkpoints, and resume that continues where it stopped."""

import json

import torch

from robopg.checkpoint import load_checkpoint
from robopg.logger import read_metrics
from robopg.runners import Trainer


def test_run_directory_holds_config_metrics_events_and_checkpoints(tiny_run):
    assert json.loads((tiny_run / "config.json").read_text())["env"]["task"] == "FetchReachDense-v4"
    rows = read_metrics(tiny_run)
    assert [r["step"] for r in rows] == [64.0 * i for i in range(1, 5)]  # 4 iterations of 16 steps x 4 envs
    assert all(r["steps_per_second"] > 0 for r in rows)
    assert any(r["episodes"] > 0 for r in rows)  # 50-step episodes end inside 256 steps
    assert {p.name for p in (tiny_run / "checkpoints").iterdir()} == {"step_0000000128.pt", "step_0000000256.pt"}
    assert list((tiny_run / "tb").iterdir()), "no TensorBoard events written"
    assert not list(tiny_run.rglob("*.tmp")), "a temporary checkpoint file was left behind"
    final = load_checkpoint(tiny_run / "final.pt")
    assert final["global_step"] == 256 and final["iteration"] == 4
    assert final["policy"]["normalizer.count"].item() == 256  # normaliser statistics travel with the policy
    assert {"optimizer", "learning_rate"} <= set(final["algo"])
    assert {"torch", "numpy", "python"} <= set(final["rng"])


def test_resume_continues_from_the_checkpoint_and_is_deterministic(tmp_path, tiny_config):
    first = tmp_path / "run"
    Trainer(tiny_config, first, progress=False).train()
    saved = load_checkpoint(first / "latest.pt")

    resumed = Trainer.resume(first, {"run": {"total_steps": 384}}, progress=False)
    assert resumed.global_step == 256 and resumed.iteration == 4
    for name, tensor in resumed.policy.state_dict().items():
        assert torch.equal(tensor, saved["policy"][name]), name
    assert resumed.algo.optimizer.state_dict()["state"][0]["step"] == saved["algo"]["optimizer"]["state"][0]["step"]
    resumed.train()
    rows = read_metrics(first)
    assert [r["step"] for r in rows] == [64.0 * i for i in range(1, 7)]  # appended, no repeated iterations
    assert [r["iteration"] for r in rows] == [1, 2, 3, 4, 5, 6]

    # Resuming the same checkpoint twice gives the same parameters: RNG, optimiser and env seeds restored.
    (first / "latest.pt").write_bytes((first / "checkpoints" / "step_0000000256.pt").read_bytes())
    again = Trainer.resume(first, {"run": {"total_steps": 384}}, progress=False)
    again.train()
    a = load_checkpoint(first / "final.pt")["policy"]
    assert all(torch.equal(resumed.policy.state_dict()[k], a[k]) for k in a)
