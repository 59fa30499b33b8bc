"""A3C's worker processes on real MuJoCo: more than one worker updates the shared parameters, the run
finishes at its step budget with checkpoints and logs like any other, and nothing is left running."""

import multiprocessing

import pytest
import torch

from robopg.checkpoint import load_checkpoint
from robopg.config import A3CConfig, EnvConfig, PolicyConfig, RunConfig, TrainConfig
from robopg.logger import read_metrics
from robopg.runners import Trainer

CFG = TrainConfig(
    env=EnvConfig(task="InvertedPendulum-v5", num_envs=4, randomization="none"),
    policy=PolicyConfig(hidden_sizes=(16,)),
    a3c=A3CConfig(workers=2, rollout_steps=8),
    run=RunConfig(algo="a3c", total_steps=1024, seed=0, checkpoint_every=4),
)


def test_workers_update_the_shared_parameters_and_leave_no_process(tmp_path):
    trainer = Trainer(CFG, tmp_path, progress=False)
    initial = {k: v.clone() for k, v in trainer.policy.state_dict().items()}
    metrics = trainer.train()
    assert multiprocessing.active_children() == []

    rows = read_metrics(tmp_path)
    assert {int(r["worker"]) for r in rows} == {0, 1}, "both workers must have applied updates"
    assert metrics["worker_updates_min"] >= 1
    assert 1024 <= trainer.global_step < 1024 + 2 * 8 * 2  # stops at the budget (each worker may finish a rollout)
    # The main process's policy is the shared one: it changed without the main process stepping it.
    changed = [k for k, v in trainer.policy.state_dict().items() if not torch.equal(v, initial[k])]
    assert any(k.startswith("actor") for k in changed) and any(k.startswith("critic") for k in changed)
    assert "normalizer.mean" in changed  # workers merged their observations into the shared statistics

    final = load_checkpoint(tmp_path / "final.pt")
    assert final["algorithm"] == "a3c" and final["global_step"] == trainer.global_step
    for key, value in trainer.policy.state_dict().items():
        assert torch.equal(final["policy"][key], value)
    assert len(final["algo"]["optimizer"]["state"]) == len(list(trainer.policy.parameters()))
    assert (tmp_path / "checkpoints").is_dir()


def test_a_failing_worker_stops_the_run_with_its_traceback(tmp_path):
    cfg = CFG.replace({"env": {"randomization": str(tmp_path / "missing_spec.toml")}})
    with pytest.raises(RuntimeError, match=r"a3c worker \d failed(.|\n)*missing_spec.toml"):
        Trainer(cfg, tmp_path / "run", progress=False).train()
    assert multiprocessing.active_children() == []


def test_a3c_resumes_into_the_shared_optimizer_state(tmp_path):
    Trainer(CFG, tmp_path, progress=False).train()
    resumed = Trainer.resume(tmp_path, {"run": {"total_steps": 1536}}, progress=False)
    saved = load_checkpoint(tmp_path / "latest.pt")["algo"]["optimizer"]["state"]
    for index, p in enumerate(resumed.policy.parameters()):
        state = resumed.algo.optimizer.state[p]
        assert len(state) >= 2  # the step count and the optimiser's statistics (RMSprop: square_avg)
        for key, tensor in state.items():
            assert torch.equal(tensor, saved[index][key]) and tensor.is_shared(), key
    resumed.train()
    assert resumed.global_step >= 1536
    assert multiprocessing.active_children() == []
