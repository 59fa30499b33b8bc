"""Which resume it is: exact for everything a checkpoint holds, different from an uninterrupted run only in the
environments (README "Resume: what is exact").

A run is stopped by a real SIGTERM (sent to this process; the trainer's handler lets the iteration finish and
checkpoints). Continuing the same Trainer object in this process loses nothing but the environments (the runner
builds them afresh); resuming a copy of the run directory from its checkpoint goes through the files. The two give
identical metrics from the first iteration after the stop, and identical parameters, for every synchronous
algorithm with the hooks that keep state (ADR, the curriculum): every RNG stream, the normaliser, the optimiser and
the hook states are in the checkpoint. Against the uninterrupted run the resumed one differs from that iteration
on, by the documented rule: it starts fresh episodes, reset with seeds.reset_seed(seed, iteration).
"""

import math
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
import torch
from train_processes import rows_written

from robopg.config import TrainConfig
from robopg.interrupts import Interrupted
from robopg.logger import read_metrics
from robopg.runners import Trainer

TIMING = {"steps_per_second", "collect_seconds", "update_seconds"}  # wall-clock figures, never equal
ITERATIONS = 10
STOP_AFTER_ROWS = 3
NUM_ENVS = 2
CASES = {
    "ppo+adr": {"run": {"algo": "ppo"}, "ppo": {"rollout_steps": 16, "epochs": 2, "minibatches": 2},
                # every episode pins a boundary, each boundary moves after one: ADR's state changes all the time
                "adr": {"enabled": True, "boundary_probability": 1.0, "buffer_size": 1}},
    "ppo-kl": {"run": {"algo": "ppo-kl"}, "ppo_kl": {"rollout_steps": 16, "epochs": 2, "minibatches": 2}},
    "trpo+curriculum": {"run": {"algo": "trpo"}, "trpo": {"rollout_steps": 16},
                        "curriculum": {"enabled": True, "ramp_steps": 200, "success_gate": 0.0}},
    "a2c": {"run": {"algo": "a2c"}, "a2c": {"rollout_steps": 16}},
    "reinforce": {"run": {"algo": "reinforce"}, "reinforce": {"rollout_steps": 50}},  # whole 50-step episodes
}


def config(case: str) -> TrainConfig:
    cfg = TrainConfig().replace({"env": {"task": "FetchReachDense-v4", "num_envs": NUM_ENVS},
                                 "policy": {"hidden_sizes": (16, 16)}, "run": {"seed": 7, "checkpoint_every": 0}})
    cfg = cfg.replace(CASES[case])
    return cfg.replace({"run": {"total_steps": ITERATIONS * cfg.batch_size}})


def stop_with_sigterm(trainer: Trainer) -> None:
    """Train until a real SIGTERM, sent by a thread once STOP_AFTER_ROWS rows are logged, stops the run."""
    late: list[int] = []

    def watch() -> None:
        while rows_written(trainer.run_dir) < STOP_AFTER_ROWS:
            time.sleep(0.002)
        os.kill(os.getpid(), signal.SIGTERM)

    # Should the signal come after the run ended (it cannot in 10 iterations, but a loaded machine starves
    # threads), it lands here instead of ending pytest.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: late.append(signum))
    try:
        threading.Thread(target=watch, daemon=True).start()
        with pytest.raises(Interrupted) as stopped:
            trainer.train()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert stopped.value.at_boundary and stopped.value.exit_code == 143 and not late


def comparable(rows: list[dict[str, float]]) -> list[dict[str, float]]:
    """The rows without wall-clock columns, NaN (no episode ended) made comparable."""
    return [{k: ("nan" if math.isnan(v) else v) for k, v in row.items() if k not in TIMING} for row in rows]


@pytest.mark.parametrize("case", list(CASES))
def test_resume_is_exact_but_for_the_environments(tmp_path: Path, case: str):
    cfg = config(case)
    continued = Trainer(cfg, tmp_path / "continued", progress=False)
    stop_with_sigterm(continued)
    stopped_at = continued.iteration
    assert STOP_AFTER_ROWS <= stopped_at < ITERATIONS
    shutil.copytree(tmp_path / "continued", tmp_path / "resumed")

    continued.train()  # the same objects: only the environments are rebuilt
    resumed = Trainer.resume(tmp_path / "resumed", progress=False)
    resumed.train()
    uninterrupted = Trainer(cfg, tmp_path / "uninterrupted", progress=False)
    uninterrupted.train()

    rows = {name: comparable(read_metrics(tmp_path / name)) for name in ("continued", "resumed", "uninterrupted")}
    assert len(rows["resumed"]) == ITERATIONS
    # Exact: what follows the checkpoint is what follows the in-memory state, to the last bit.
    assert rows["resumed"] == rows["continued"]
    for name, tensor in continued.policy.state_dict().items():
        assert torch.equal(tensor, resumed.policy.state_dict()[name]), name
    # Up to the stop all three are the same run ...
    assert rows["resumed"][:stopped_at] == rows["uninterrupted"][:stopped_at]
    # ... and after it the resumed run differs from the uninterrupted one: its episodes started afresh.
    assert rows["resumed"][stopped_at] != rows["uninterrupted"][stopped_at]
    if cfg.algorithm.rollout_steps == 16:  # 50-step episodes: none ends in the first 3 rollouts after the reset
        episodes = [row["episodes"] for row in rows["resumed"][stopped_at:stopped_at + 4]]
        assert episodes[:3] == [0, 0, 0] and episodes[3] == NUM_ENVS
