"""`--logger wandb mlflow`: a short real run records the scalars of metrics.csv, the config and, at export, the
policy file, with W&B offline and MLflow in a local SQLite store (no network); resume continues both runs."""

import json
import math
import shutil
import struct
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from wandb.proto import wandb_internal_pb2

from robopg.cli import main
from robopg.config import Tracker
from robopg.logger import MetricsLogger, read_metrics
from robopg.runners import Trainer

TRACKERS = (Tracker.TENSORBOARD, Tracker.WANDB, Tracker.MLFLOW)


def wandb_records(path: Path) -> list:
    """Every record of an offline W&B run file: a LevelDB-style log (32 KiB blocks; per chunk a 7-byte header
    crc32, length, type FULL=1 / FIRST=2 / MIDDLE=3 / LAST=4) after a 7-byte ':W&B' file header, each record
    one wandb_internal_pb2.Record."""
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, pos, pending = [], 7, b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a header is padding
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def wandb_rows(run_dir: Path, run_id: str) -> list[tuple[int, dict[str, float]]]:
    """(step, {key: value}) of every history record in the offline run files of ``run_id`` (a resumed run adds
    one), in the order they were logged."""
    rows = []
    for path in sorted(run_dir.glob(f"wandb/offline-run-*-{run_id}*/run-{run_id}.wandb")):
        for record in wandb_records(path):
            if record.WhichOneof("record_type") == "history":
                row = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
                rows.append((int(row.pop("_step")), row))
    return rows


def wandb_history(run_dir: Path, run_id: str) -> dict[int, dict[str, float]]:
    """step -> {key: value} from every offline run file of ``run_id``."""
    return dict(wandb_rows(run_dir, run_id))


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.fixture
def wandb_dirs(tmp_path, monkeypatch):
    """W&B's staging and cache directories inside the test's folder, not the home directory."""
    for name in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))


def test_wandb_offline_and_mlflow_record_the_scalars_of_metrics_csv_the_config_and_the_policy(
        tiny_config, tmp_path, wandb_dirs):
    run_dir = tmp_path / "tracked"
    cfg = replace(tiny_config, run=replace(tiny_config.run, logger=TRACKERS))
    Trainer(cfg, run_dir, progress=False).train()
    rows = read_metrics(run_dir)
    columns = [c for c in rows[0] if c != "step"]
    assert len(rows) == 4 and "success_rate" in columns and "policy_loss" in columns
    tracking = json.loads((run_dir / "tracking.json").read_text())

    mlflow = MlflowClient(tracking["mlflow"]["tracking_uri"])
    run_id = tracking["mlflow"]["run_id"]
    assert tracking["mlflow"]["tracking_uri"] == f"sqlite:///{run_dir.resolve()}/mlflow.db"
    for column in columns:
        history = sorted((m.step, m.value) for m in mlflow.get_metric_history(run_id, column))
        assert [s for s, _ in history] == [int(r["step"]) for r in rows], column
        assert all(same(v, r[column]) for (_, v), r in zip(history, rows, strict=True)), column
    params = mlflow.get_run(run_id).data.params
    assert params["run.seed"] == "3" and params["ppo.rollout_steps"] == "16" and params["env.task"] == "FetchReachDense-v4"

    wandb_id = tracking["wandb"]["id"]
    history = wandb_history(run_dir, wandb_id)
    assert sorted(history) == [int(r["step"]) for r in rows]
    for r in rows:
        assert all(same(history[int(r["step"])][c], r[c]) for c in columns)

    assert main(["export", str(run_dir), "--out", str(tmp_path / "reach.onnx")]) == 0
    assert "reach.onnx" in {a.path for a in mlflow.list_artifacts(run_id)} >= {"config.json"}
    artifacts = [rec.artifact for path in run_dir.glob("wandb/offline-run-*/run-*.wandb")
                 for rec in wandb_records(path) if rec.WhichOneof("record_type") == "artifact"]
    assert [(a.name, a.type) for a in artifacts] == [("tracked-policy", "model")]
    assert [e.path for e in artifacts[0].manifest.contents] == ["reach.onnx"]


def test_resume_continues_the_same_tracked_runs(tiny_config, tmp_path, wandb_dirs):
    run_dir = tmp_path / "resumed"
    cfg = replace(tiny_config, run=replace(tiny_config.run, logger=(Tracker.WANDB, Tracker.MLFLOW), total_steps=128))
    Trainer(cfg, run_dir, progress=False).train()
    first = json.loads((run_dir / "tracking.json").read_text())
    Trainer.resume(run_dir, {"run": {"total_steps": 256}}, progress=False).train()
    after = json.loads((run_dir / "tracking.json").read_text())
    assert (after["wandb"], after["mlflow"]) == (first["wandb"], first["mlflow"])  # the same tracked runs
    assert after["logged_until"] == 128  # the highest step they held at the resume (robopg/tracking.py)
    steps = [int(r["step"]) for r in read_metrics(run_dir)]
    assert steps == [64, 128, 192, 256]
    mlflow = MlflowClient(first["mlflow"]["tracking_uri"])
    assert sorted(m.step for m in mlflow.get_metric_history(first["mlflow"]["run_id"], "policy_loss")) == steps
    assert sorted(wandb_history(run_dir, first["wandb"]["id"])) == steps
    assert not (run_dir / "tb").exists()  # TensorBoard was not asked for


def test_a_resume_past_a_crash_logs_every_step_once_in_every_tracker(tiny_config, tmp_path, wandb_dirs):
    run_dir = tmp_path / "crashed"
    cfg = replace(tiny_config, run=replace(tiny_config.run, logger=TRACKERS))  # 4 iterations, checkpoints at 2, 4
    Trainer(cfg, run_dir, progress=False).train()
    first = read_metrics(run_dir)
    # The files kill -9 leaves after iteration 4's row and before its checkpoint: iteration 2's is the latest.
    for name in ("final.pt", "checkpoints/step_0000000256.pt"):
        (run_dir / name).unlink()
    shutil.copy(run_dir / "checkpoints" / "step_0000000128.pt", run_dir / "latest.pt")

    Trainer.resume(run_dir, {"run": {"total_steps": 320}}, progress=False).train()
    rows = read_metrics(run_dir)
    steps = [64, 128, 192, 256, 320]
    assert [int(r["step"]) for r in rows] == steps  # rows 3 and 4 of the crashed run were dropped, then redone
    assert all(same(r[k], f[k]) for r, f in zip(rows[:2], first[:2], strict=True) for k in f)
    tracking = json.loads((run_dir / "tracking.json").read_text())
    assert tracking["logged_until"] == 256

    # W&B and MLflow hold each step once: the first attempt's values up to the crash, the resumed run's after.
    mlflow = MlflowClient(tracking["mlflow"]["tracking_uri"])
    history = sorted((m.step, m.value) for m in mlflow.get_metric_history(tracking["mlflow"]["run_id"], "policy_loss"))
    logged = [step for step, _ in wandb_rows(run_dir, tracking["wandb"]["id"])]
    assert [step for step, _ in history] == steps and sorted(logged) == steps and len(set(logged)) == len(logged)
    expected = [first[0], first[1], first[2], first[3], rows[4]]
    assert all(same(value, row["policy_loss"]) for (_, value), row in zip(history, expected, strict=True))


def test_a_tracker_whose_package_is_missing_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # makes `import wandb` raise ImportError
    config = {"run": {"logger": ["wandb"], "project": "robopg", "wandb_mode": "offline", "mlflow_tracking_uri": ""}}
    with pytest.raises(ValueError, match=r"pip install 'robopg\[wandb\]'"):
        MetricsLogger(tmp_path, config)
