"""The control loop with real policy files, onnxruntime and replay logs on disk; the only fakes are robot
adapters that misbehave (raise, time out, stall, send a signal), standing in for a faulty hardware driver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from policy_fixtures import expected_action, make_metadata

from policies_export import Controller
from policies_export.loop import LoopConfig, PreciseTiming, StopReason, run_loop
from policies_export.replay import ReplayRobot
from policies_export.robot import EpisodicRobot, Robot
from policies_export.safety import SafetyConfig
from policies_export.telemetry import Telemetry

RNG = np.random.default_rng(0)
OBSERVATIONS = RNG.normal(scale=0.5, size=(20, 5))
NO_RATE_LIMIT = SafetyConfig(max_action_change=None)
UNTHROTTLED = LoopConfig(realtime=False)


def _write_log(path: Path, observations: np.ndarray, dt: float = 0.04) -> Path:
    with path.open("w") as f:
        for i, obs in enumerate(observations):
            f.write(json.dumps({"t": i * dt, "obs": obs.tolist()}) + "\n")
    return path


class FlakyRobot:
    """A driver whose read() raises on the given ticks (e.g. a serial timeout), like a real arm might."""

    def __init__(self, fail_on: set[int], error: Exception, ticks: int = 10) -> None:
        self.fail_on, self.error, self.ticks = fail_on, error, ticks
        self.tick, self.applied = 0, []

    def read(self) -> np.ndarray:
        self.tick += 1
        if self.tick in self.fail_on:
            raise self.error
        return OBSERVATIONS[self.tick % len(OBSERVATIONS)]

    def apply(self, action: np.ndarray) -> None:
        self.applied.append(action.copy())

    def time(self) -> float:
        return float(self.tick)


def test_replay_through_the_loop_applies_the_controllers_actions(policy_path: Path, tmp_path: Path) -> None:
    robot = ReplayRobot.from_file(_write_log(tmp_path / "log.jsonl", OBSERVATIONS))
    assert isinstance(robot, Robot) and not isinstance(robot, EpisodicRobot)
    result = run_loop(Controller.load(policy_path, safety=NO_RATE_LIMIT), robot, UNTHROTTLED)
    assert (
        result.ok
        and result.stop_reason is StopReason.ROBOT_STOPPED
        and "end of log after 20" in result.message
    )
    np.testing.assert_allclose(robot.actions, [expected_action(o) for o in OBSERVATIONS], atol=1e-6)
    summary = result.summary
    assert summary["ticks"] == 20 and summary["fallbacks"] == 0 and summary["rate_hz"] is None
    assert 0 < summary["latency_us"]["p50"] <= summary["latency_us"]["p99"] <= summary["latency_us"]["max"]


def test_fixed_rate_loop_uses_the_files_rate_and_stops_at_max_ticks(
    policy_path: Path, tmp_path: Path
) -> None:
    robot = ReplayRobot.from_file(_write_log(tmp_path / "log.jsonl", OBSERVATIONS))
    result = run_loop(Controller.load(policy_path), robot, LoopConfig(rate_hz=500.0, max_ticks=5))
    assert result.stop_reason is StopReason.MAX_TICKS and result.summary["ticks"] == 5
    assert result.summary["rate_hz"] == 500.0 and result.summary["jitter_us"]["p50"] is not None
    assert len(robot.actions) == 6  # 5 ticks + the neutral stop command
    np.testing.assert_array_equal(robot.actions[-1], [0.0, 0.0])
    default = run_loop(Controller.load(policy_path), robot, LoopConfig(max_ticks=1))
    assert default.summary["rate_hz"] == make_metadata().control_rate_hz


def test_rate_the_machine_cannot_hold_stops_with_a_message(policy_path: Path, tmp_path: Path) -> None:
    robot = ReplayRobot.from_file(_write_log(tmp_path / "log.jsonl", OBSERVATIONS))
    config = LoopConfig(rate_hz=1e7, max_consecutive_misses=3)  # a 0.1 us period: no tick fits
    result = run_loop(Controller.load(policy_path), robot, config)
    assert not result.ok and result.stop_reason is StopReason.RATE_NOT_HELD
    assert "missed 3 deadlines in a row at 1e+07 Hz" in result.message and "Lower --rate" in result.message
    assert result.summary["ticks"] == 3 and result.summary["deadline_misses"] >= 3
    np.testing.assert_array_equal(robot.actions[-1], [0.0, 0.0])  # neutral sent on the way out


def test_robot_raising_mid_episode_gets_the_safe_action_and_the_loop_carries_on(policy_path: Path) -> None:
    robot = FlakyRobot(fail_on={3}, error=TimeoutError("no packet from arm within 5 ms"))
    telemetry = Telemetry()
    result = run_loop(
        Controller.load(policy_path, safety=SafetyConfig(safe_action="hold")),
        robot,
        LoopConfig(realtime=False, max_ticks=6),
        telemetry,
    )
    assert result.ok and result.summary["interventions"]["robot_error"] == 1
    np.testing.assert_array_equal(robot.applied[2], robot.applied[1])  # tick 3 held tick 2's action
    assert len(robot.applied) == 7 and all(np.abs(a).max() <= 2 for a in robot.applied)


def test_robot_failing_repeatedly_stops_the_loop_naming_the_driver(policy_path: Path) -> None:
    robot = FlakyRobot(fail_on=set(range(2, 100)), error=OSError("serial port /dev/ttyUSB0 closed"))
    result = run_loop(
        Controller.load(policy_path), robot, LoopConfig(realtime=False, max_consecutive_robot_errors=3)
    )
    assert not result.ok and result.stop_reason is StopReason.ROBOT_ERROR
    assert "failed 3 ticks in a row" in result.message
    assert "OSError: serial port /dev/ttyUSB0 closed" in result.message and "FlakyRobot" in result.message
    assert result.summary["ticks"] == 4 and result.summary["interventions"]["robot_error"] == 3


def test_apply_raising_is_counted_too(policy_path: Path) -> None:
    class BrokenActuator(FlakyRobot):
        def apply(self, action: np.ndarray) -> None:
            raise ConnectionResetError("arm closed the UDP socket")

    result = run_loop(Controller.load(policy_path), BrokenActuator(set(), RuntimeError()), UNTHROTTLED)
    assert (
        result.stop_reason is StopReason.ROBOT_ERROR
        and "robot.apply() raised ConnectionResetError" in result.message
    )


def test_read_that_takes_too_long_sends_the_safe_action(policy_path: Path) -> None:
    class StallingRobot(FlakyRobot):
        def read(self) -> np.ndarray:
            obs = super().read()
            if self.tick == 2:
                time.sleep(0.05)  # longer than the 10 ms allowed below
            return obs

    robot = StallingRobot(set(), RuntimeError())
    ctrl = Controller.load(policy_path, safety=SafetyConfig(safe_action="zero", max_read_s=0.01))
    result = run_loop(ctrl, robot, LoopConfig(realtime=False, max_ticks=3))
    assert result.summary["interventions"]["slow_read"] == 1
    np.testing.assert_array_equal(robot.applied[1], [0.0, 0.0])


def test_frozen_sensor_stream_is_caught_by_the_stale_watchdog(policy_path: Path, tmp_path: Path) -> None:
    log = tmp_path / "frozen.jsonl"
    log.write_text("".join(json.dumps({"t": 1.0, "obs": OBSERVATIONS[0].tolist()}) + "\n" for _ in range(5)))
    result = run_loop(Controller.load(policy_path), ReplayRobot.from_file(log), UNTHROTTLED)
    assert result.summary["interventions"]["stale_obs"] == 3  # the 1st is fresh, 1 repeat is tolerated


def test_nan_and_out_of_range_observations_from_a_log(
    write_policy: Callable[..., Path], tmp_path: Path
) -> None:
    meta = make_metadata(observation_low=(-1.0,) * 5, observation_high=(1.0,) * 5)
    log = tmp_path / "faults.jsonl"
    log.write_text(
        '{"t": 0, "obs": [0, 0, 0, 0, 0]}\n{"t": 1, "obs": [0, NaN, 0, 0, 0]}\n'
        '{"t": 2, "obs": [0, 0, Infinity, 0, 0]}\n{"t": 3, "obs": [0, 0, 0, 7, 0]}\n'
    )
    robot = ReplayRobot.from_file(log)
    result = run_loop(Controller.load(write_policy(metadata=meta)), robot, UNTHROTTLED)
    counts = result.summary["interventions"]
    assert (counts["nonfinite_obs"], counts["obs_out_of_range"], result.summary["fallbacks"]) == (2, 1, 3)
    assert all(np.isfinite(a).all() for a in robot.actions)


def test_wiring_error_stops_the_loop_with_the_layout_and_the_fix(policy_path: Path, tmp_path: Path) -> None:
    log = tmp_path / "dicts.jsonl"
    log.write_text(
        '{"obs": {"joint_pos": [0, 0, 0], "goal": [0, 0]}}\n'
        '{"obs": {"joint_pos": [0, 0, 0], "gaol": [0, 0]}}\n'
    )
    robot = ReplayRobot.from_file(log)
    result = run_loop(Controller.load(policy_path), robot, UNTHROTTLED)
    assert not result.ok and result.stop_reason is StopReason.WIRING_ERROR
    assert "obs dict is missing 'goal'" in result.message and "robopg inspect" in result.message
    assert result.summary["ticks"] == 1 and len(robot.actions) == 2  # 1 tick + the neutral stop command


def test_sigint_stops_the_loop_cleanly(policy_path: Path) -> None:
    class OperatorPressesCtrlC(FlakyRobot):
        def apply(self, action: np.ndarray) -> None:
            super().apply(action)
            if len(self.applied) == 3:
                os.kill(os.getpid(), signal.SIGINT)

    robot = OperatorPressesCtrlC(set(), RuntimeError(), ticks=100)
    previous = signal.getsignal(signal.SIGINT)
    result = run_loop(Controller.load(policy_path), robot, UNTHROTTLED)
    assert result.ok and result.stop_reason is StopReason.SIGNAL and result.message == "stopped by SIGINT"
    assert result.summary["ticks"] == 3
    np.testing.assert_array_equal(robot.applied[-1], [0.0, 0.0])
    assert signal.getsignal(signal.SIGINT) is previous  # handler restored


def test_telemetry_log_has_every_tick_and_a_summary_and_replays(policy_path: Path, tmp_path: Path) -> None:
    log = _write_log(tmp_path / "log.jsonl", OBSERVATIONS[:5])
    tel_path = tmp_path / "telemetry.jsonl"
    ctrl = Controller.load(policy_path, safety=SafetyConfig(max_action_change=0.01))
    result = run_loop(ctrl, ReplayRobot.from_file(log), UNTHROTTLED, Telemetry(tel_path))
    lines = [json.loads(line) for line in tel_path.read_text().splitlines()]
    ticks = [line for line in lines if "tick" in line]
    assert [t["tick"] for t in ticks] == [0, 1, 2, 3, 4]
    assert ticks[1]["t"] == pytest.approx(0.04) and ticks[1]["obs"] == pytest.approx(OBSERVATIONS[1].tolist())
    assert ticks[0]["interventions"][0][0] == "rate_limited" and ticks[0]["latency_us"] > 0
    assert lines[-1] == {"summary": result.summary}
    assert result.summary["interventions"]["rate_limited"] == sum(len(t["interventions"]) for t in ticks)
    again = ReplayRobot.from_file(tel_path)  # a telemetry file is a replay log
    run_loop(Controller.load(policy_path), again, UNTHROTTLED)
    assert len(again.actions) == 5


def test_loop_config_checks_its_values() -> None:
    with pytest.raises(ValueError, match="rate_hz must be a positive number"):
        LoopConfig(rate_hz=0.0)
    with pytest.raises(ValueError, match="max_ticks must be >= 1"):
        LoopConfig(max_ticks=0)


# ---------------------------------------------------------------- precise timing (LoopConfig.precise)


def test_precise_timing_never_starts_a_tick_early_and_sends_the_same_actions(policy_path: Path, tmp_path: Path) -> None:
    """Real clock, 200 Hz: spinning up to each deadline means no tick starts before it; the warm-up ticks run on
    a shadow controller, so actions, telemetry and counters equal those of the plain loop on the same log."""
    log = _write_log(tmp_path / "log.jsonl", OBSERVATIONS, dt=0.005)
    runs = {}
    for name, precise in (("plain", None), ("precise", PreciseTiming(spin_s=0.001, warm_ups=2))):
        robot = ReplayRobot.from_file(log)
        controller = Controller.load(policy_path, safety=NO_RATE_LIMIT)
        telemetry = Telemetry()
        result = run_loop(controller, robot, LoopConfig(rate_hz=200, precise=precise), telemetry)
        runs[name] = (robot.actions, controller.stats, result.summary, telemetry.lateness_us())
    (plain_actions, plain_stats, plain_summary, _), (actions, stats, summary, lateness) = runs["plain"], runs["precise"]
    np.testing.assert_array_equal(actions, plain_actions)
    assert stats == plain_stats and summary["interventions"] == plain_summary["interventions"]
    assert summary["ticks"] == 20 and (lateness >= 0).all()


def test_warm_up_leaves_the_controllers_state_and_history_untouched(write_policy: Callable[..., Path]) -> None:
    """With history (K=2, M=1): dummy ticks between real ones change nothing the robot gets or the counters say."""
    meta = make_metadata(history={"observations": 2, "actions": 1})
    path = write_policy(metadata=meta, weight=RNG.normal(scale=0.2, size=(2, 12)).astype(np.float32))
    plain, warmed = Controller.load(path), Controller.load(path)
    for i, obs in enumerate(OBSERVATIONS[:8]):
        warmed.warm_up(3)
        bad = obs if i != 4 else np.full(5, np.nan)  # a fallback tick too
        np.testing.assert_array_equal(warmed.act(bad, stamp=float(i)), plain.act(bad, stamp=float(i)))
        np.testing.assert_array_equal(warmed.last_input, plain.last_input)
    assert warmed.stats == plain.stats and warmed.stats["ticks"] == 8


def test_warm_up_replays_the_last_observation_in_the_form_it_came(policy_path: Path) -> None:
    """The dummy ticks take the path the next real tick takes: after a dict tick a dict of the same values, after a
    flat one the flat vector; either way the shadow's input equals the last real one."""
    ctrl = Controller.load(policy_path)
    for obs in ({"joint_pos": OBSERVATIONS[1][:3], "goal": OBSERVATIONS[1][3:]}, OBSERVATIONS[2]):
        ctrl.act(obs)
        ctrl.warm_up(1)
        as_dict = isinstance(obs, dict)
        assert isinstance(ctrl._shadow._last_obs, dict) == as_dict
        np.testing.assert_array_equal(ctrl._shadow.last_input, ctrl.last_input)
    assert ctrl.stats["ticks"] == 2


def test_pinning_and_real_time_priority_apply_during_the_loop_only(policy_path: Path, tmp_path: Path) -> None:
    seen = []

    class Probe(ReplayRobot):
        def read(self):  # what scheduling the loop's thread has while it runs
            seen.append((os.sched_getaffinity(0), os.sched_getscheduler(0)))
            return super().read()

    before = (os.sched_getaffinity(0), os.sched_getscheduler(0))
    cpu = min(before[0])
    robot = Probe([OBSERVATIONS[0]] * 3, [0.0, 0.005, 0.01])
    try:
        config = LoopConfig(rate_hz=200, precise=PreciseTiming(cpu=cpu, priority=1))
        run_loop(Controller.load(policy_path), robot, config)
    except PermissionError as err:  # not root: the message says what to do; the rest still runs unprivileged
        assert "rtprio" in str(err) and "leave PreciseTiming.priority unset" in str(err)
        run_loop(Controller.load(policy_path), robot, LoopConfig(rate_hz=200, precise=PreciseTiming(cpu=cpu)))
        assert all(affinity == {cpu} for affinity, _ in seen)
    else:
        assert len(seen) >= 3 and all(got == ({cpu}, os.SCHED_FIFO) for got in seen)
    assert (os.sched_getaffinity(0), os.sched_getscheduler(0)) == before


def test_real_time_priority_without_the_right_to_it_names_the_fix(policy_path: Path, tmp_path: Path) -> None:
    """Without the right to real-time scheduling (as root: a child without CAP_SYS_NICE, via util-linux's setpriv)
    --rt-priority exits 2 with the fix."""
    log = _write_log(tmp_path / "log.jsonl", OBSERVATIONS[:3])
    unprivileged = ["setpriv", "--bounding-set", "-sys_nice", "--inh-caps", "-sys_nice"] if os.getuid() == 0 else []
    args = [str(policy_path), "--robot", f"replay:{log}", "--precise-timing", "--rt-priority", "10"]
    done = subprocess.run(
        [*unprivileged, sys.executable, "-m", "policies_export", *args],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 2, done.stderr
    assert "SCHED_FIFO) is not permitted" in done.stderr and "Traceback" not in done.stderr
    with pytest.raises(ValueError, match=r"priority must be a SCHED_FIFO priority in 1\.\.99, got 0"):
        PreciseTiming(priority=0)
    with pytest.raises(ValueError, match=r"cpu 4096 is not one this process may run on"):
        PreciseTiming(cpu=4096)
