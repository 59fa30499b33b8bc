"""Videos of the episodes an evaluation runs: ``robopg evaluate POLICY.onnx --video OUT.mp4``.

The frames come from the evaluation itself: ``SimRobot`` calls an ``EpisodeRecorder`` after every reset and
every step of the loop that ``policies_export.run_loop`` drives with the file's ``Controller``, so the video
shows exactly the episodes that were scored. Each frame is drawn by MuJoCo's offscreen renderer
(``mujoco.Renderer``) from the task's own default camera, with the episode, step, return, success and any
safety-layer intervention of that tick written on it.

Rendering needs an OpenGL backend, chosen before MuJoCo is imported (``MUJOCO_GL``): EGL where a GPU driver
is present, OSMesa (the Debian/Ubuntu package ``libosmesa6``) on a CPU machine. Evaluation without a video
never needs one.

Files are written with imageio: MP4 (H.264) through the ffmpeg binary that the ``imageio-ffmpeg`` wheel ships,
so no system ffmpeg is needed, and GIF through Pillow. imageio rather than PyAV: one call per format, a
writer that takes numpy frames as they come, and Pillow (which it needs anyway) also draws the text.
Everything here is the optional extra ``robopg[video]``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from policies_export.safety import FALLBACKS

if TYPE_CHECKING:  # both import MuJoCo, which must not be imported before choose_gl_backend()
    from policies_export import Controller
    from robopg.sim_robot import SimRobot

INSTALL_HINT = (
    "Fix: on a CPU machine install OSMesa (Debian/Ubuntu: apt-get install libosmesa6) and run with "
    "MUJOCO_GL=osmesa; on a GPU machine use its driver's EGL with MUJOCO_GL=egl. Evaluation without --video "
    "needs no OpenGL"
)
EXTRA_HINT = "Fix: pip install 'robopg[video]' (imageio, imageio-ffmpeg, Pillow)"
FORMATS = (".mp4", ".gif")

# Renders one frame of an empty scene: whether a backend works can only be known by trying, and only in a
# fresh process, because MuJoCo binds its GL backend once, at import.
_PROBE = (
    "import mujoco\n"
    "m = mujoco.MjModel.from_xml_string('<mujoco/>')\n"
    "r = mujoco.Renderer(m, 16, 16)\n"
    "r.update_scene(mujoco.MjData(m))\n"
    "r.render()\n"
)


class GLUnavailableError(ValueError):
    """No OpenGL backend could start MuJoCo's offscreen renderer (the CLI exits 2 with the message)."""


def choose_gl_backend() -> str:
    """Set ``MUJOCO_GL`` (and ``PYOPENGL_PLATFORM``) to a backend that renders, before MuJoCo is imported.

    A backend the user set is kept (a failure then names it); so is whatever MuJoCo already bound, since it
    cannot change in this process. Otherwise EGL is tried first where a GPU device exists, then OSMesa, then
    EGL on machines without one (Mesa's software EGL). Raises GLUnavailableError naming what to install.
    """
    if os.environ.get("MUJOCO_GL"):
        return os.environ["MUJOCO_GL"]
    if "mujoco" in sys.modules:
        return "glfw"  # MuJoCo's default when MUJOCO_GL was unset at its import
    gpu = Path("/dev/nvidia0").exists() or any(Path("/dev/dri").glob("renderD*"))
    candidates = ("egl", "osmesa") if gpu else ("osmesa", "egl")
    failures = []
    for backend in candidates:
        env = {**os.environ, "MUJOCO_GL": backend, "PYOPENGL_PLATFORM": backend}
        probe = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True,
                               timeout=120)
        if probe.returncode == 0:
            os.environ.update(MUJOCO_GL=backend, PYOPENGL_PLATFORM=backend)
            return backend
        lines = probe.stderr.strip().splitlines()
        failures.append(f"{backend}: {lines[-1] if lines else f'exit {probe.returncode}'}")
    raise GLUnavailableError(f"--video: no OpenGL backend can render offscreen here ({'; '.join(failures)}). "
                             f"{INSTALL_HINT}")


@dataclass(frozen=True)
class VideoConfig:
    """What ``--video`` records: the first ``episodes`` episodes of the evaluation at width x height."""

    path: Path
    episodes: int = 2
    width: int = 480
    height: int = 480

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if self.path.suffix.lower() not in FORMATS:
            raise ValueError(f"--video {self.path}: unknown format '{self.path.suffix}'. Fix: end the name in "
                             f"{' or '.join(FORMATS)}")
        if self.episodes < 1:
            raise ValueError(f"--video-episodes must be >= 1, got {self.episodes}")
        for name, size in (("width", self.width), ("height", self.height)):
            # H.264 in yuv420p needs even sizes; imageio would otherwise rescale the frames.
            if not 16 <= size <= 4096 or size % 2:
                raise ValueError(f"--video-size: {name} {size} must be even and in 16..4096, e.g. 480x480")


def parse_size(text: str) -> tuple[int, int]:
    """'480x360' -> (480, 360), width first."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--video-size '{text}' is not WIDTHxHEIGHT. Fix: pass e.g. --video-size 480x480") from None
    return width, height


class FrameRenderer:
    """``mujoco.Renderer`` on a task env's model, looking through the task's default camera.

    frame(): (height, width, 3) uint8 of the current simulator state."""

    def __init__(self, env: Any, width: int, height: int) -> None:
        import mujoco

        self.unwrapped = env.unwrapped
        model = getattr(self.unwrapped, "model", None)
        if not isinstance(model, mujoco.MjModel):
            raise ValueError(f"--video renders MuJoCo tasks; {env.spec.id if env.spec else env} has no MuJoCo model. "
                             "Fix: drop --video for this task")
        # The offscreen framebuffer caps the frame size (640x480 unless the MJCF says otherwise); it is a
        # visual setting only, no physics reads it.
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, height)
        try:
            self.renderer = mujoco.Renderer(model, height, width)
        except Exception as err:  # each backend fails its own way: ImportError, EGLError, AttributeError, ...
            backend = os.environ.get("MUJOCO_GL", "glfw (MUJOCO_GL unset)")
            raise GLUnavailableError(f"--video: MuJoCo's offscreen renderer cannot start with MUJOCO_GL={backend}: "
                                     f"{type(err).__name__}: {err}. {INSTALL_HINT}") from None
        self.camera = mujoco.MjvCamera()
        mujoco.mjv_defaultFreeCamera(model, self.camera)
        view = getattr(getattr(self.unwrapped, "mujoco_renderer", None), "default_cam_config", None) or {}
        for key, value in view.items():
            if isinstance(value, np.ndarray):
                getattr(self.camera, key)[:] = value
            else:
                setattr(self.camera, key, value)

    def frame(self) -> np.ndarray:
        # gymnasium-robotics moves the goal marker to the episode's goal in this hook, which its own render()
        # calls; it only sets a site position and recomputes derived quantities (mj_forward), not the state.
        hook = getattr(self.unwrapped, "_render_callback", None)
        if hook is not None:
            hook()
        self.renderer.update_scene(self.unwrapped.data, self.camera)
        return self.renderer.render()

    def close(self) -> None:
        self.renderer.close()


def annotate(frame: np.ndarray, top: str, status: str, ok: bool | None, alert: str) -> np.ndarray:
    """Write ``top`` (episode and step) and ``status`` (return, success) in a dark band at the top of the
    frame, the status green when ``ok``, and ``alert`` (safety interventions) in a red band at the bottom.

    frame: (H, W, 3) uint8; returns a new array of the same shape."""
    from PIL import Image, ImageDraw, ImageFont

    height, width = frame.shape[:2]
    size = max(9, height // 24)
    font = ImageFont.load_default(size=size)
    out = frame.copy()
    band = 2 * size + 10
    out[:band] = (out[:band] * 0.35).astype(np.uint8)  # darken, so white text reads on any scene
    if alert:
        out[-size - 8:] = (out[-size - 8:] * 0.3 + np.array([200, 0, 0]) * 0.7).astype(np.uint8)
    image = Image.fromarray(out)
    draw = ImageDraw.Draw(image)
    draw.text((6, 4), top, fill=(255, 255, 255), font=font)
    colour = (255, 255, 255) if ok is None else (90, 230, 90) if ok else (230, 230, 230)
    draw.text((6, size + 7), status, fill=colour, font=font)
    if alert:
        draw.text((6, height - size - 5), alert, fill=(255, 255, 255), font=font)
    return np.asarray(image)


class VideoWriter:
    """MP4 frames are encoded as they come (ffmpeg); GIF frames are kept and written at close (Pillow)."""

    def __init__(self, path: Path, fps: float) -> None:
        try:
            import imageio.v2 as imageio
            import imageio_ffmpeg  # noqa: F401 - the MP4 encoder; fail here, not after the first episode
        except ImportError:
            raise ValueError(f"--video needs imageio and imageio-ffmpeg. {EXTRA_HINT}") from None
        self.path, self.fps, self.frames = Path(path), fps, 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._gif: list[np.ndarray] | None = [] if self.path.suffix.lower() == ".gif" else None
        self._mp4 = None
        if self._gif is None:
            self._mp4 = imageio.get_writer(self.path, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                           pixelformat="yuv420p", quality=7, macro_block_size=2,
                                           ffmpeg_log_level="error")

    def write(self, frame: np.ndarray) -> None:
        """frame: (H, W, 3) uint8, the same size for every frame."""
        if self._gif is not None:
            self._gif.append(frame)
        else:
            self._mp4.append_data(frame)
        self.frames += 1

    def close(self) -> None:
        if self._gif is not None:
            import imageio.v3 as iio

            if self._gif:
                iio.imwrite(self.path, np.stack(self._gif), plugin="pillow", duration=1000.0 / self.fps, loop=0)
            self._gif = None
        elif self._mp4 is not None:
            self._mp4.close()
            self._mp4 = None


class EpisodeRecorder:
    """A ``SimRobot`` observer: after every reset and every step of the first ``config.episodes`` episodes, one
    annotated frame. Per episode of T steps that is T + 1 frames (its start, then the state after each action).

    The controller is the one the loop runs; at the robot's step its safety layer holds this tick's events."""

    def __init__(self, config: VideoConfig, controller: Controller) -> None:
        self.config = config
        self.controller = controller
        self.renderer: FrameRenderer | None = None
        self.writer: VideoWriter | None = None

    def __call__(self, robot: SimRobot) -> None:
        if robot.episode >= self.config.episodes:
            return
        if self.renderer is None:
            self.writer = VideoWriter(self.config.path, fps=1.0 / robot.control_dt)
            self.renderer = FrameRenderer(robot.env, self.config.width, self.config.height)
        limit = robot.env.spec.max_episode_steps if robot.env.spec is not None else None
        top = f"episode {robot.episode + 1}/{self.config.episodes}   step {robot.episode_step}" + (
            f"/{limit}" if limit else "")
        success = robot.success
        status = f"return {robot.episode_return:.2f}"
        if success is not None:
            status += "   success: yes" if success else "   success: no"
        events = self.controller.safety.events if robot.episode_step else []
        alert = ""
        if events:
            kinds = sorted({str(kind) for kind, _ in events})
            label = "safe action" if any(kind in FALLBACKS for kind, _ in events) else "action changed"
            alert = f"safety: {label} ({', '.join(kinds)})"
        ok = None if success is None else bool(success)
        self.writer.write(annotate(self.renderer.frame(), top, status, ok, alert))

    @property
    def frames(self) -> int:
        return self.writer.frames if self.writer is not None else 0

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.renderer is not None:
            self.renderer.close()
