"""``python -m policies_export`` / ``robopg-controller`` end to end in subprocesses, with real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]


def controller(*args: str, prelude: str = "") -> subprocess.CompletedProcess:
    code = f"{prelude}\nimport sys\nfrom policies_export.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT
    )


def _log(tmp_path: Path, n: int = 8) -> Path:
    log = tmp_path / "log.jsonl"
    rng = np.random.default_rng(1)
    log.write_text(
        "".join(json.dumps({"t": i * 0.04, "obs": rng.normal(size=5).tolist()}) + "\n" for i in range(n))
    )
    return log


def test_replay_run_prints_a_summary_and_writes_telemetry(policy_path: Path, tmp_path: Path) -> None:
    telemetry = tmp_path / "tel.jsonl"
    done = controller(
        str(policy_path),
        "--robot",
        f"replay:{_log(tmp_path)}",
        "--no-realtime",
        "--telemetry",
        str(telemetry),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["ticks"] == 8 and summary["stop_reason"] == "robot_stopped"
    assert json.loads(telemetry.read_text().splitlines()[-1]) == {"summary": summary}
    human = controller(str(policy_path), "--robot", f"replay:{_log(tmp_path)}", "--rate", "400")
    assert human.returncode == 0 and "deadline misses" in human.stdout and "interventions" in human.stdout


def test_module_entry_point_is_the_same_program(policy_path: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "policies_export",
            str(policy_path),
            "--robot",
            f"replay:{_log(tmp_path)}",
            "--no-realtime",
            "--max-ticks",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "stopped: max_ticks" in done.stdout


def test_unusable_policy_file_exits_2_naming_the_file_and_fix(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_text("not a model")
    bad = controller(str(junk), "--robot", f"replay:{_log(tmp_path)}")
    assert bad.returncode == 2 and "junk.onnx" in bad.stderr and "robopg export" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_unknown_robot_kind_and_bad_options_exit_2(policy_path: Path, tmp_path: Path) -> None:
    unknown = controller(str(policy_path), "--robot", "myarm:/dev/ttyUSB0")
    assert unknown.returncode == 2 and "no robot kind 'myarm'; installed: replay" in unknown.stderr
    assert "policies_export.robots" in unknown.stderr
    no_kind = controller(str(policy_path), "--robot", "log.jsonl")
    assert no_kind.returncode == 2 and "expected KIND:ARG" in no_kind.stderr
    option = controller(str(policy_path), "--robot", f"replay:{_log(tmp_path)}", "--robot-option", "speed")
    assert option.returncode == 2 and "expected KEY=VALUE" in option.stderr
    missing_log = controller(str(policy_path), "--robot", f"replay:{tmp_path / 'none.jsonl'}")
    assert missing_log.returncode == 2 and "no such log file" in missing_log.stderr


def test_sim_robot_without_mujoco_says_what_to_install(policy_path: Path) -> None:
    """A robot computer has no MuJoCo: simulate that by making its import fail in the child process."""
    blocked = controller(
        str(policy_path),
        "--robot",
        "sim:FetchReachDense-v4",
        prelude="import sys; sys.modules['mujoco'] = None; sys.modules['gymnasium'] = None",
    )
    assert blocked.returncode == 2, blocked.stderr
    assert "robot kind 'sim'" in blocked.stderr and "pip install 'robopg[train]'" in blocked.stderr
    assert "replay:LOG" in blocked.stderr and "Traceback" not in blocked.stderr


def test_rate_the_machine_cannot_hold_exits_1(policy_path: Path, tmp_path: Path) -> None:
    done = controller(str(policy_path), "--robot", f"replay:{_log(tmp_path, 50)}", "--rate", "1e7")
    assert done.returncode == 1
    assert "cannot hold the rate" in done.stderr and "Lower --rate" in done.stderr
