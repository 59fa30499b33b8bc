"""Integrity of exported files: the digest export writes, and the three ways in (Controller.load, robopg inspect,
robopg-controller) refusing a file with real bytes flipped, or metadata bounds that disagree with the graph's clip."""

import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from policies_export import Controller, PolicyFileError, integrity
from robopg.export import export_policy

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    return export_policy(tiny_run, tmp_path_factory.mktemp("integrity") / "reach.onnx")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)


def flipped_in_the_weights(path: Path, out: Path, count: int = 32) -> Path:
    """A copy of ``path`` with ``count`` bytes inverted in the middle of its largest weight tensor."""
    data = bytearray(path.read_bytes())
    weights = max(onnx.load(path).graph.initializer, key=lambda init: len(init.raw_data)).raw_data
    start = data.find(weights) + len(weights) // 2
    assert data.count(weights) == 1 and len(weights) > 4 * count
    for i in range(start, start + count):
        data[i] ^= 0xFF
    out.write_bytes(bytes(data))
    return out


def test_export_records_the_digest_of_the_file_with_its_digits_zeroed(exported):
    data = exported.path.read_bytes()
    digest = exported.metadata.sha256
    assert len(digest) == 64 and data.count(digest.encode()) == 1
    by_hand = hashlib.sha256(data.replace(digest.encode(), b"0" * 64)).hexdigest()
    assert by_hand == digest
    controller = Controller.load(exported.path)
    assert controller.digest_verified and controller.bounds_verified
    assert controller.metadata.sha256 == digest


def test_flipped_weight_bytes_are_refused_by_every_entry_point(exported, tmp_path):
    bad = flipped_in_the_weights(exported.path, tmp_path / "bad.onnx")
    # Without the digest nothing would notice: onnx's checker passes and onnxruntime runs it, acting differently.
    onnx.checker.check_model(onnx.load(bad), full_check=True)
    obs = np.random.default_rng(0).normal(size=(64, 16)).astype(np.float32)
    actions = [ort.InferenceSession(str(p)).run(["action"], {"obs": obs})[0] for p in (exported.path, bad)]
    assert np.abs(actions[0] - actions[1]).max() > 1e-3

    with pytest.raises(PolicyFileError, match=rf"^{bad}: integrity check failed: .* changed after export.*re-export"):
        Controller.load(bad)
    inspect = run("-m", "robopg.cli", "inspect", str(bad))
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps({"t": 0.04 * i, "obs": [0.0] * 16}) + "\n" for i in range(3)))
    controller = run("-m", "policies_export", str(bad), "--robot", f"replay:{log}", "--no-realtime")
    for done in (inspect, controller):
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.splitlines()
        assert "bad.onnx: integrity check failed" in line and "re-export" in line


def test_a_flipped_digit_of_the_digest_itself_is_refused(exported, tmp_path):
    data = exported.path.read_bytes()
    digest = exported.metadata.sha256
    wrong = ("1" if digest[0] != "1" else "2") + digest[1:]
    bad = tmp_path / "bad_digest.onnx"
    bad.write_bytes(data.replace(digest.encode(), wrong.encode()))
    with pytest.raises(PolicyFileError, match="integrity check failed"):
        Controller.load(bad)


def test_metadata_bounds_wider_than_the_graphs_clip_are_refused(exported, tmp_path):
    """Widen the metadata to +-5 and stamp a fresh digest (as someone 'fixing' the bounds by hand would): the
    graph still clips to +-1, and load says so."""
    model = onnx.load(exported.path)
    meta = dataclasses.replace(
        exported.metadata, action_low=(-5.0,) * 4, action_high=(5.0,) * 4, sha256=integrity.PLACEHOLDER
    )
    model.metadata_props[0].value = meta.to_json()
    data, _ = integrity.stamp(model.SerializeToString())
    widened = tmp_path / "widened.onnx"
    widened.write_bytes(data)
    with pytest.raises(
        PolicyFileError,
        match=r"the graph maps actions onto \[-1, 1\], \[-1, 1\], .* but the metadata says action bounds "
        r"\[-5, 5\], .* graph and metadata disagree",
    ):
        Controller.load(widened)
    done = run("-m", "robopg.cli", "inspect", str(widened))
    assert done.returncode == 2 and "graph and metadata disagree" in done.stderr
