"""`robopg evaluate --video`: the evaluated episodes rendered offscreen into a real MP4/GIF, read back.

The CLI runs in subprocesses: MuJoCo binds its GL backend at import, and the test process imported it long
ago without one. On a CPU machine rendering needs OSMesa (`make test` installs libosmesa6 when missing).
"""

import json
import os
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest

from robopg.export import export_policy
from robopg.video import VideoConfig, annotate, parse_size

STEPS = 50  # FetchReachDense-v4's time limit


@pytest.fixture(scope="module")
def reach_policy(tiny_run, tmp_path_factory):
    return export_policy(tiny_run, tmp_path_factory.mktemp("video") / "reach.onnx").path


def robopg(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robopg.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def headless(**extra: str) -> dict:
    """This process's environment without a display or a chosen GL backend, plus ``extra``."""
    drop = {"DISPLAY", "WAYLAND_DISPLAY", "MUJOCO_GL", "PYOPENGL_PLATFORM"}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def test_a_two_episode_mp4_has_one_frame_per_tick_at_the_asked_size_and_the_same_scores(reach_policy, tmp_path):
    out = tmp_path / "reach.mp4"
    args = ["evaluate", str(reach_policy), "--episodes", "2", "--profile", "laggy_noisy", "--json"]
    plain = robopg(*args, env=headless())
    video = robopg(*args, "--video", str(out), "--video-size", "96x64", env=headless())
    assert plain.returncode == 0 and video.returncode == 0, plain.stderr + video.stderr
    frames = iio.imread(out, plugin="FFMPEG", index=None)
    # Each episode: its first state, then the state after each of its 50 actions.
    assert frames.shape == (2 * (STEPS + 1), 64, 96, 3) and frames.dtype == np.uint8
    result, unrendered = json.loads(video.stdout), json.loads(plain.stdout)
    assert result["video"] == str(out) and result["video_frames"] == 2 * (STEPS + 1)
    # Rendering watched the same loop, it did not change it: identical scores, episode for episode.
    for key in ("episodes", "success_rate", "mean_return", "std_return", "fallbacks", "interventions"):
        assert result[key] == unrendered[key], key
    # The scene is lit (not a blank buffer) and moves: the arm reaches, frames differ over an episode.
    assert frames[:, 20:, :].mean() > 40
    assert np.abs(frames[STEPS].astype(int) - frames[0].astype(int)).mean() > 1


def test_a_gif_by_extension_holds_the_episodes_asked_for(reach_policy, tmp_path):
    out = tmp_path / "reach.gif"
    done = robopg("evaluate", str(reach_policy), "--episodes", "1", "--video", str(out),
                  "--video-episodes", "1", "--video-size", "64x48", env=headless())
    assert done.returncode == 0, done.stderr
    frames = iio.imread(out, index=None)
    assert frames.shape[:3] == (STEPS + 1, 48, 64)
    assert f"wrote {out}: {STEPS + 1} frames" in done.stderr


def test_video_without_a_gl_backend_exits_2_with_the_install_hint(reach_policy, tmp_path):
    # GLFW needs a display; without one it cannot make a context: a backend that cannot load, on any machine.
    no_gl = headless(MUJOCO_GL="glfw")
    failed = robopg("evaluate", str(reach_policy), "--episodes", "1", "--video", str(tmp_path / "x.mp4"),
                    "--video-episodes", "1", env=no_gl)
    assert failed.returncode == 2, failed.stderr
    assert "libosmesa6" in failed.stderr and "MUJOCO_GL=glfw" in failed.stderr and "MUJOCO_GL=egl" in failed.stderr
    assert "Traceback" not in failed.stderr
    # Evaluation itself never needs GL.
    plain = robopg("evaluate", str(reach_policy), "--episodes", "1", "--json", env=no_gl)
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["episodes"] == 1


def test_bad_video_arguments_are_named_with_the_fix(reach_policy, tmp_path):
    for extra, message in (
        (["--video", str(tmp_path / "x.avi")], "end the name in .mp4 or .gif"),
        (["--video", str(tmp_path / "x.mp4"), "--video-size", "481x480"], "must be even"),
        (["--video", str(tmp_path / "x.mp4"), "--video-size", "big"], "--video-size 480x480"),
        (["--video", str(tmp_path / "x.mp4"), "--video-episodes", "3", "--episodes", "2"], "--episodes 3"),
        (["--video", str(tmp_path / "x.mp4"), "--profile", "all"], "one --profile"),
    ):
        failed = robopg("evaluate", str(reach_policy), *extra, env=headless())
        assert failed.returncode == 2 and message in failed.stderr, (extra, failed.stderr)
        assert "Traceback" not in failed.stderr


def test_the_overlay_writes_text_on_a_dark_band_and_alerts_on_a_red_one():
    frame = np.full((120, 160, 3), 180, np.uint8)
    quiet = annotate(frame, "episode 1/2   step 3/50", "return -1.00   success: no", False, "")
    band = quiet[: 120 // 24 * 2 + 10]
    assert np.median(band) < 80 and (band.min(axis=2) > 200).any()  # dark band, white text on it
    assert (quiet[-10:] == 180).all()  # no alert: the bottom is untouched
    alert = annotate(frame, "episode 1/2   step 3/50", "return -1.00", None, "safety: safe action (stale_obs)")
    bottom = alert[-12:].reshape(-1, 3).astype(int)
    assert np.median(bottom[:, 0]) > 150 and np.median(bottom[:, 1]) < 80  # red
    assert alert.shape == frame.shape and (frame == 180).all()  # the input frame is not drawn on


def test_video_config_parses_and_checks_its_size():
    assert parse_size("480x360") == (480, 360)
    assert VideoConfig("a.GIF", 1, 64, 48).path.suffix == ".GIF"
    with pytest.raises(ValueError, match="16..4096"):
        VideoConfig("a.mp4", 1, 8, 8)


def test_ticks_with_a_safety_intervention_show_the_red_band(reach_policy, tmp_path):
    # Sensor noise far outside anything the tiny policy's normaliser saw: the range check fires on many ticks.
    noisy = tmp_path / "very_noisy.toml"
    noisy.write_text('[observation_noise]\ndistribution = "fixed"\nvalue = 0.3\n')
    out = tmp_path / "noisy.mp4"
    done = robopg("evaluate", str(reach_policy), "--episodes", "1", "--profile", str(noisy), "--json",
                  "--video", str(out), "--video-episodes", "1", "--video-size", "96x96", env=headless())
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    # Only range fallbacks happen here (the file clips its own output; no rate limit), one event per tick.
    assert result["fallbacks"] == result["interventions"]["obs_out_of_range"] > 5
    frames = iio.imread(out, plugin="FFMPEG", index=None).astype(int)
    bottom = frames[:, -6:, :, :].reshape(len(frames), -1, 3)
    red = (np.median(bottom[..., 0], axis=1) > 150) & (np.median(bottom[..., 1], axis=1) < 100)
    assert red.sum() == result["fallbacks"] and not red[0]  # the episode's first frame precedes any tick
