"""The run-hook contract of docs/design.md on a real run: call order, success of every finished episode,
metrics in metrics.csv, state in checkpoints under the hook's key and back on resume."""

from typing import Any

import pytest

from robopg.checkpoint import load_checkpoint
from robopg.config import EnvConfig, PolicyConfig, PPOConfig, RunConfig, TrainConfig
from robopg.logger import read_metrics
from robopg.runners import Trainer

# 2 envs x 32 steps per iteration, 4 iterations, checkpoint every 2; InvertedPendulum episodes end within ~10
# steps under a random policy, so every rollout finishes episodes.
CFG = TrainConfig(
    env=EnvConfig(task="InvertedPendulum-v5", num_envs=2, randomization="none"),
    policy=PolicyConfig(hidden_sizes=(16,)),
    ppo=PPOConfig(rollout_steps=32, epochs=1, minibatches=2),
    run=RunConfig(total_steps=256, seed=1, checkpoint_every=2),
)


class Recorder:
    """A hook that writes down what it is told."""

    checkpoint_key = "recorder"

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.episodes = 0
        self.steps = 0

    def begin(self, env: Any) -> None:
        self.calls.append("begin")

    def arm(self, env: Any) -> None:
        self.calls.append("arm")

    def episode_ended(self, env: Any, index: int, success: float | None) -> None:
        assert index in (0, 1) and success is None  # InvertedPendulum reports no success
        self.episodes += 1
        if self.calls[-1] != "episode":
            self.calls.append("episode")

    def iteration_ended(self, env: Any, steps: int, metrics: dict[str, float]) -> None:
        assert "episode_return" in metrics and "steps_per_second" in metrics
        self.steps += steps
        self.calls.append("iteration")

    def metrics(self) -> dict[str, float]:
        return {"recorder_episodes": float(self.episodes)}

    def state_dict(self) -> dict[str, Any]:
        return {"episodes": self.episodes, "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.episodes, self.steps = state["episodes"], state["steps"]


def test_a_hook_hears_every_phase_logs_and_checkpoints(tmp_path):
    trainer = Trainer(CFG, tmp_path, progress=False)
    hook = Recorder()
    trainer.hooks.append(hook)
    trainer.train()
    assert hook.calls[:2] == ["begin", "arm"]
    assert hook.calls[2:] == ["episode", "iteration"] * 4  # each rollout ends episodes, then its update
    assert hook.steps == 256
    rows = read_metrics(tmp_path)
    assert [r["recorder_episodes"] for r in rows] == sorted(r["recorder_episodes"] for r in rows)
    assert rows[-1]["recorder_episodes"] == hook.episodes
    assert sum(r["episodes"] for r in rows) == hook.episodes  # the hook heard of every finished episode
    assert load_checkpoint(tmp_path / "checkpoints" / "step_0000000128.pt")["recorder"]["steps"] == 128
    assert load_checkpoint(tmp_path / "final.pt")["recorder"] == {"episodes": hook.episodes, "steps": 256}


def test_resume_restores_the_hooks_and_refuses_a_checkpoint_without_their_state(tmp_path):
    trainer = Trainer(CFG, tmp_path, progress=False)
    trainer.hooks.append(Recorder())
    trainer.train()
    resumed = Trainer.resume(tmp_path, {"run": {"total_steps": 384}}, progress=False)
    restored = Recorder()
    resumed.hooks.append(restored)
    resumed.load_state_dict(load_checkpoint(tmp_path / "latest.pt"))
    assert restored.steps == 256 and restored.episodes == trainer.hooks[0].episodes

    plain = tmp_path / "plain"
    Trainer(CFG, plain, progress=False).train()
    again = Trainer.resume(plain, progress=False)
    again.hooks.append(Recorder())
    with pytest.raises(ValueError, match=r"holds no 'recorder' state.*Fix: resume without"):
        again.load_state_dict(load_checkpoint(plain / "latest.pt"), source=str(plain / "latest.pt"))


def test_the_update_runs_on_update_threads_and_the_collection_on_torch_threads(tmp_path, monkeypatch):
    """--update-threads N: torch uses N intra-op threads inside every update and torch_threads (1) around it."""
    import torch

    from robopg.algos.ppo import PPO

    seen: list[tuple[int, int]] = []
    update = PPO.update

    def observed(self, storage, progress, generator):  # the real update, with the thread count around it
        inside = torch.get_num_threads()
        metrics = update(self, storage, progress, generator)
        seen.append((inside, torch.get_num_threads()))
        return metrics

    monkeypatch.setattr(PPO, "update", observed)
    Trainer(CFG.replace({"run": {"update_threads": 2, "checkpoint_every": 0}}), tmp_path / "run", progress=False).train()
    assert seen == [(2, 2)] * 4  # 256 steps / (2 envs x 32): four updates, each at 2 threads
    assert torch.get_num_threads() == 1  # the run's torch_threads again once each update is done
