"""ReplayRobot: reading JSONL and NPZ logs from disk, and the errors for logs it cannot use."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from policies_export import Controller
from policies_export.errors import LogFileError
from policies_export.loop import LoopConfig, run_loop
from policies_export.replay import ReplayRobot
from policies_export.robot import RobotStopped
from policies_export.telemetry import Telemetry


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
        ('{"t": 0, "obs": [1, "2.5"]}\n', r"log\.jsonl:1: 'obs'\[1\] is '2\.5', expected a number"),
        ('{"t": 0, "obs": [1]}\n{"t": 1, "obs": {"a": ["x"]}}\n', r"log\.jsonl:2: 'obs'\['a'\]\[0\] is 'x'"),
        ('{"obs": [true, 1]}\n', r"log\.jsonl:1: 'obs'\[0\] is True, expected a number"),
        ('{"obs": [[1, 2]]}\n', r"log\.jsonl:1: 'obs'\[0\] is \[1, 2\], expected a number"),
        (
            '{"t": 0, "obs": [1]}\n{"event": "episode_end"}\n{"obs": [2]}\n',
            r"log\.jsonl:3: record has no 't', but the log is timed \(line 1 has one\)",
        ),
        (
            '{"obs": [1]}\n{"t": 1, "obs": [2]}\n',
            r"log\.jsonl:1: record has no 't', but the log is timed \(line 2 has one\)",
        ),
    ],
)
def test_bad_jsonl_logs_name_the_line(tmp_path: Path, content: str, expected: str) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(content)
    with pytest.raises(LogFileError, match=expected):
        ReplayRobot.from_file(log)


def test_binary_content_names_the_file_and_line(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(b'{"t": 0, "obs": [1]}\n\x89PNG\r\n\x1a\n')
    with pytest.raises(LogFileError, match=r"log\.jsonl:2: not UTF-8 text \(byte 0x89 at column 1\): a binary file\?"):
        ReplayRobot.from_file(log)
    renamed = tmp_path / "archive.jsonl"  # an .npz under the wrong name
    np.savez(tmp_path / "archive.npz", obs=np.random.default_rng(0).normal(size=(4, 3)))
    (tmp_path / "archive.npz").rename(renamed)
    with pytest.raises(LogFileError, match=r"archive\.jsonl:1: not (UTF-8 text|JSON)"):
        ReplayRobot.from_file(renamed)


def test_telemetry_ticks_without_an_observation_are_skipped(tmp_path: Path) -> None:
    """A tick whose read() raised is logged with "obs": null and "t": null: nothing to replay."""
    log = tmp_path / "tel.jsonl"
    log.write_text('{"tick": 0, "t": 0.04, "obs": [1]}\n{"tick": 1, "t": null, "obs": null}\n{"tick": 2, "t": 0.12, "obs": [3]}\n')
    robot = ReplayRobot.from_file(log)
    assert [robot.read().tolist() for _ in range(2)] == [[1.0], [3.0]] and robot.time() == 0.12


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
    strings = tmp_path / "strings.npz"
    np.savez(strings, obs=np.array([["0.1", "0.2"]]))
    with pytest.raises(LogFileError, match=r"strings\.npz: array 'obs' holds <U3 values, expected numbers"):
        ReplayRobot.from_file(strings)
    objects = tmp_path / "objects.npz"
    np.savez(objects, obs=np.array([[0.1, None]], dtype=object))
    with pytest.raises(LogFileError, match=r"objects\.npz: array 'obs' cannot be read"):
        ReplayRobot.from_file(objects)
    nan_t = tmp_path / "nan_t.npz"
    np.savez(nan_t, obs=np.zeros((2, 2)), t=np.array([0.0, np.nan]))
    with pytest.raises(LogFileError, match=r"nan_t\.npz: t\[1\] = nan; timestamps must be finite"):
        ReplayRobot.from_file(nan_t)


def test_what_a_faulty_robot_sent_replays_and_is_named_at_its_tick(write_policy, tmp_path: Path) -> None:
    """A timestamp going back and a value beyond float32 load as recorded; the safety layer names each, with the
    real value, and without a RuntimeWarning from the float32 cast."""
    log = tmp_path / "incident.jsonl"
    log.write_text(
        '{"t": 0.04, "obs": [0, 0, 0, 0, 0]}\n{"t": 0.08, "obs": [0, 0, 0, 0, 0]}\n'
        '{"t": 0.04, "obs": [0, 0, 0, 0, 0]}\n{"t": 0.12, "obs": [0, 0, 3e39, 0, 0]}\n'
    )
    telemetry = tmp_path / "tel.jsonl"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = run_loop(
            Controller.load(write_policy()), ReplayRobot.from_file(log), LoopConfig(realtime=False), Telemetry(telemetry)
        )
    ticks = [json.loads(line) for line in telemetry.read_text().splitlines() if '"tick"' in line]
    assert ticks[2]["interventions"] == [
        ["stale_obs", "robot timestamp went back from 0.080000 s to 0.040000 s; a robot's clock must never go back "
         "(check the driver's time())"]
    ]
    [(kind, detail)] = ticks[3]["interventions"]
    assert kind == "obs_out_of_range" and "joint_pos[2]=3e+39" in detail
    assert result.summary["interventions"]["stale_obs"] == 1 and result.summary["fallbacks"] == 2
