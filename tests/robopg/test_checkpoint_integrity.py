"""Checkpoints on disk: the digest they carry, refused when real bytes are flipped in the actor or the critic
(export and resume), and the fallback past a truncated or empty latest.pt / final.pt."""

import hashlib
import shutil
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from robopg.checkpoint import (
    DIGEST_KEY,
    CheckpointError,
    CheckpointWarning,
    CorruptCheckpointError,
    load_checkpoint,
    state_digest,
)
from robopg.export import export_policy
from robopg.runners import Trainer

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run(tiny_run, tmp_path) -> Path:
    """A copy of the tiny run to damage: final.pt, latest.pt and checkpoints/step_{128,256}.pt."""
    return Path(shutil.copytree(tiny_run, tmp_path / "run"))


def robopg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "robopg.cli", *args], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT
    )


def flip_bytes_of(path: Path, tensor_name: str, count: int = 64) -> None:
    """Invert ``count`` bytes in the middle of the stored data of the policy tensor ``tensor_name``."""
    tensor = load_checkpoint(path)["policy"][tensor_name]
    stored = tensor.contiguous().view(-1).view(torch.uint8).numpy().tobytes()
    data = bytearray(path.read_bytes())
    assert data.count(stored) == 1 and len(stored) > 2 * count
    start = data.find(stored) + (len(stored) - count) // 2
    for i in range(start, start + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_the_digest_is_the_documented_walk_over_the_state():
    state = {"step": 3, "weights": torch.tensor([1.0, -2.0])}
    # By hand (robopg/checkpoint.py): dict of 2, key "step" -> int 3, key "weights" -> float32 tensor of shape (2,).
    stream = (
        b"D2;" + b"S4;step" + b"I3;" + b"S7;weights" + b"Ttorch.float32(2,)" + struct.pack("<2f", 1.0, -2.0)
    )
    assert state_digest(state) == hashlib.sha256(stream).hexdigest()
    assert state_digest({**state, DIGEST_KEY: "anything"}) == state_digest(state)  # the digest is not hashed
    assert state_digest({"step": 3.0, "weights": state["weights"]}) != state_digest(state)  # 3.0 is not 3


def test_checkpoints_carry_their_digest(run):
    raw = torch.load(run / "final.pt", weights_only=False)
    assert raw[DIGEST_KEY] == state_digest(raw)
    state = load_checkpoint(run / "final.pt")
    assert DIGEST_KEY not in state and state["global_step"] == 256


def test_flipped_actor_bytes_are_refused_at_export(run, tmp_path):
    flip_bytes_of(run / "final.pt", "actor.2.weight")
    with pytest.raises(CorruptCheckpointError, match=rf"{run / 'final.pt'} is damaged: .* refused"):
        export_policy(run, tmp_path / "p.onnx")
    done = robopg("export", str(run), "--out", str(tmp_path / "p.onnx"))
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    # Names the newest intact checkpoint to fall back to: latest.pt holds the same final state.
    assert "final.pt is damaged" in line and f"`robopg export {run / 'latest.pt'} --out FILE`" in line
    assert not (tmp_path / "p.onnx").exists()


def test_flipped_critic_bytes_are_refused_at_resume(run):
    flip_bytes_of(run / "latest.pt", "critic.0.weight")
    with pytest.raises(CorruptCheckpointError, match=r"latest\.pt is damaged"):
        Trainer.resume(run, progress=False)
    done = robopg("train", "--resume", str(run), "--total-steps", "512", "--no-progress")
    assert done.returncode == 2, done.stderr
    assert "latest.pt is damaged" in done.stderr and "Traceback" not in done.stderr
    # The way out: final.pt holds the same (intact) state.
    assert f"{run / 'final.pt'} (step 256)" in done.stderr and f"copy it over {run / 'latest.pt'}" in done.stderr


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_resume_past_an_unreadable_latest_uses_the_newest_intact_step_file(run, damage):
    (run / "final.pt").unlink()  # a run killed before it finished
    latest = run / "latest.pt"
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2] if damage == "truncated" else b"")
    with pytest.warns(CheckpointWarning, match=r"latest\.pt .*; using .*step_0000000256\.pt \(step 256\) instead"):
        trainer = Trainer.resume(run, progress=False)
    assert trainer.global_step == 256


def test_resume_says_so_when_no_checkpoint_is_intact(run):
    (run / "final.pt").unlink()
    for path in [run / "latest.pt", *run.glob("checkpoints/step_*.pt")]:
        path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"no intact checkpoint in .*latest\.pt cannot be read: truncated"):
        Trainer.resume(run, progress=False)
    done = robopg("train", "--resume", str(run), "--no-progress")
    assert done.returncode == 2 and "no intact checkpoint" in done.stderr and "Traceback" not in done.stderr


def test_export_past_a_truncated_final_pt_says_which_checkpoint_it_used(run, tmp_path):
    final = run / "final.pt"
    final.write_bytes(final.read_bytes()[:-1000])
    done = robopg("export", str(run), "--out", str(tmp_path / "p.onnx"))
    assert done.returncode == 0, done.stderr
    [note] = done.stderr.splitlines()
    assert note.startswith("robopg export: note: ") and "final.pt cannot be read: truncated" in note
    assert f"using {run / 'latest.pt'} (step 256) instead" in note


def test_a_checkpoint_without_digest_loads_with_a_warning(run):
    raw = torch.load(run / "final.pt", weights_only=False)
    del raw[DIGEST_KEY]  # what robopg wrote before checkpoints had digests
    torch.save(raw, run / "final.pt")
    with pytest.warns(CheckpointWarning, match="has no digest"):
        load_checkpoint(run / "final.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointWarning)
        load_checkpoint(run / "latest.pt")
