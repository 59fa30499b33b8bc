"""SimRobot (real MuJoCo) behind the runtime's Robot protocol, driven by the same loop as a real arm."""

import json
import subprocess
import sys

import numpy as np
import pytest

from policies_export import Controller
from policies_export.loop import LoopConfig, StopReason, run_loop
from policies_export.robot import EpisodicRobot
from robopg.evaluate import evaluate_policy
from robopg.export import export_policy
from robopg.sim_robot import SimRobot, robot_from_spec

TASK = "FetchReachDense-v4"


@pytest.fixture(scope="module")
def reach_policy(tiny_run, tmp_path_factory):
    return export_policy(tiny_run, tmp_path_factory.mktemp("sim_robot") / "reach.onnx").path


def test_sim_robot_is_an_episodic_robot_with_simulated_time():
    robot = SimRobot(TASK, seed=4)
    try:
        assert isinstance(robot, EpisodicRobot)
        obs = robot.read()
        assert obs.shape == (16,) and obs.dtype == np.float32 and robot.time() == 0.0
        steps = 0
        while not robot.episode_done():
            robot.apply(np.zeros(4, np.float32))
            steps += 1
        assert steps == 50 and robot.time() == pytest.approx(50 * 0.04)
        assert len(robot.episode_returns) == 1 and robot.episode_returns[0] < 0
        assert robot.episode_successes in ([0.0], [1.0])
        with pytest.raises(RuntimeError, match="episode 0 is over; call reset"):
            robot.apply(np.zeros(4, np.float32))
        robot.reset()
        assert not robot.episode_done() and robot.time() == pytest.approx(2.0)  # time never goes back
    finally:
        robot.close()
    again = SimRobot(TASK, seed=4)
    np.testing.assert_array_equal(again.read(), obs)  # reproducible from the seed
    again.close()


def test_loop_runs_sim_episodes_and_resets_between_them(reach_policy):
    robot = SimRobot(TASK, seed=0, profile="laggy_noisy")
    try:
        result = run_loop(Controller.load(reach_policy), robot, LoopConfig(realtime=False, max_episodes=2))
    finally:
        robot.close()
    assert result.ok and result.stop_reason is StopReason.EPISODES
    assert result.summary["episodes"] == 2 and result.summary["ticks"] == 100
    assert len(robot.episode_returns) == 2 and result.summary["fallbacks"] == 0


def test_evaluate_goes_through_the_loop_and_can_run_in_real_time(reach_policy):
    fast = evaluate_policy(reach_policy, profile="nominal", episodes=2, seed=7)
    assert fast.episodes == 2 and fast.task == TASK and fast.fallbacks == 0
    assert 0 < fast.latency_p50_us <= fast.latency_p99_us
    timed = evaluate_policy(reach_policy, profile="nominal", episodes=1, seed=7, rate_hz=100.0)
    # The rate changes when ticks happen, not what happens: the first episode is the same.
    assert timed.mean_return == pytest.approx(
        evaluate_policy(reach_policy, profile="nominal", episodes=1, seed=7).mean_return
    )


def test_evaluate_names_the_right_task_when_sizes_differ(reach_policy):
    with pytest.raises(
        ValueError, match="expects 16 observation values but FetchPush-v4 gives 31.*--task Fetch"
    ):
        evaluate_policy(reach_policy, task="FetchPush-v4", episodes=1)


def test_sim_robot_factory_checks_its_options():
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['speed'\]"):
        robot_from_spec(TASK, {"speed": "2"})
    with pytest.raises(ValueError, match="name the task"):
        robot_from_spec("", {})


def test_controller_entry_point_runs_the_sim_robot(reach_policy, tmp_path):
    telemetry = tmp_path / "tel.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "policies_export",
            str(reach_policy),
            "--robot",
            f"sim:{TASK}",
            "--robot-option",
            "profile=nominal",
            "--robot-option",
            "seed=3",
            "--episodes",
            "1",
            "--no-realtime",
            "--telemetry",
            str(telemetry),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["episodes"] == 1 and summary["ticks"] == 50 and summary["stop_reason"] == "episodes"
    events = [json.loads(line) for line in telemetry.read_text().splitlines() if '"event"' in line]
    assert events == [{"event": "episode_end", "tick": 50, "episode": 0}]
