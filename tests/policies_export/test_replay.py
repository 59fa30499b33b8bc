"""ReplayRobot: reading JSONL and NPZ logs from disk, and the errors for logs it cannot use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from policies_export.errors import LogFileError
from policies_export.replay import ReplayRobot
from policies_export.robot import RobotStopped


def test_jsonl_log_replays_in_order_with_its_timestamps(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(
        '{"t": 0.5, "obs": [1, 2]}\n\n{"event": "episode_end"}\n{"t": 0.54, "obs": {"a": [3], "b": [4]}}\n'
    )
    robot = ReplayRobot.from_file(log)
    np.testing.assert_array_equal(robot.read(), [1, 2])
    assert robot.time() == 0.5
    second = robot.read()
    assert isinstance(second, dict) and second["b"].tolist() == [4]
    assert robot.time() == 0.54
    with pytest.raises(RobotStopped, match="end of log after 2 observations"):
        robot.read()
    robot.apply(np.array([0.1, 0.2]))
    np.testing.assert_allclose(robot.actions, [[0.1, 0.2]])


def test_npz_log_without_timestamps_uses_the_index(tmp_path: Path) -> None:
    path = tmp_path / "log.npz"
    np.savez(path, obs=np.arange(6.0).reshape(3, 2))
    robot = ReplayRobot.from_file(path)
    stamps = []
    for _ in range(3):
        robot.read()
        stamps.append(robot.time())
    assert stamps == [0.0, 1.0, 2.0]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"obs": [1]}\n{"obs": [1]\n', r"log\.jsonl:2: not JSON"),
        ("[1, 2]\n", r"log\.jsonl:1: expected a JSON object, got list"),
        ('{"obs": 3}\n', r"log\.jsonl:1: 'obs' must be a list or an object"),
        ('{"obs": [1], "t": "noon"}\n', r"log\.jsonl:1: 't' must be a finite number of seconds"),
        ('{"summary": {}}\n', "log holds no observations"),
    ],
)
def test_bad_jsonl_logs_name_the_line(tmp_path: Path, content: str, expected: str) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(content)
    with pytest.raises(LogFileError, match=expected):
        ReplayRobot.from_file(log)


def test_bad_npz_logs_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(LogFileError, match=r"nope\.jsonl: no such log file"):
        ReplayRobot.from_file(tmp_path / "nope.jsonl")
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, observations=np.zeros((2, 2)))
    with pytest.raises(LogFileError, match=r"has arrays \['observations'\], expected 'obs'"):
        ReplayRobot.from_file(wrong)
    stamps = tmp_path / "stamps.npz"
    np.savez(stamps, obs=np.zeros((3, 2)), t=np.zeros(2))
    with pytest.raises(LogFileError, match=r"'t' has shape \(2,\), expected \(3,\)"):
        ReplayRobot.from_file(stamps)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(LogFileError, match="not a readable .npz file"):
        ReplayRobot.from_file(junk)
