"""Evaluate an exported policy file through the robot's control loop against the simulated robot.

This is the deployment code path: ``policies_export.run_loop`` drives ``policies_export.Controller`` (file
checks, observation checks, inference, safety layer) against ``SimRobot``, exactly as it drives a real arm,
optionally under a reality profile (``envs/profiles/``) or a randomisation spec. The only difference from the
robot is the clock: evaluation runs unthrottled (no sleeping) unless ``rate_hz`` is given.

``evaluate_matrix`` runs several files under several profiles (``--profile all``: every shipped one) into one
table, the transfer matrix; ``video`` records the first episodes of an evaluation (robopg/video.py).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import envs
from policies_export import Controller
from policies_export.loop import LoopConfig, run_loop
from policies_export.safety import SafetyConfig
from robopg.sim_robot import SimRobot
from robopg.video import EpisodeRecorder, VideoConfig


@dataclass(frozen=True)
class EvalResult:
    policy: str
    task: str
    profile: str | None
    randomization: str
    episodes: int
    success_rate: float | None  # None for tasks without a success signal
    mean_return: float
    std_return: float
    latency_p50_us: float  # controller.act: observation checks + inference + safety layer
    latency_p99_us: float
    fallbacks: int  # safe actions substituted by the safety layer
    interventions: dict[str, int]  # every safety-layer intervention by kind (clipped, rate-limited, ...)
    video: str | None = None  # the file the first episodes were recorded into
    video_frames: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_policy(
    policy_path: str | Path,
    task: str | None = None,
    profile: str | None = "nominal",
    randomization: str = "none",
    episodes: int = 20,
    seed: int = 0,
    rate_hz: float | None = None,
    safety: SafetyConfig | None = None,
    video: VideoConfig | None = None,
) -> EvalResult:
    """Run ``episodes`` episodes (episode i from seed + i) and score them.

    rate_hz: None runs unthrottled; a number runs the loop in real time at that rate.
    safety: the safety layer's settings (default: the robot's defaults).
    video: record the first ``video.episodes`` of them (needs an OpenGL backend: robopg/video.py).
    """
    if video is not None and video.episodes > episodes:
        raise ValueError(f"--video-episodes {video.episodes} is more than --episodes {episodes}. "
                         f"Fix: pass --episodes {video.episodes} or more")
    controller = Controller.load(policy_path, safety=safety)
    task = task or controller.metadata.task
    recorder = EpisodeRecorder(video, controller) if video is not None else None
    with ExitStack() as closing:  # the robot first, then the recorder (which finishes the file)
        if recorder is not None:
            closing.callback(recorder.close)
        robot = SimRobot(task, seed=seed, randomization=randomization, profile=profile, observer=recorder)
        closing.callback(robot.close)
        if robot.obs_dim != controller.obs_dim:
            raise ValueError(
                f"{policy_path} expects {controller.obs_dim} observation values but {task} gives "
                f"{robot.obs_dim}; the policy was trained on {controller.metadata.task}: "
                f"pass --task {controller.metadata.task}"
            )
        loop = LoopConfig(rate_hz=rate_hz, realtime=rate_hz is not None, max_episodes=episodes)
        result = run_loop(controller, robot, loop)
    if not result.ok:  # ValueError: the CLI prints it as a one-line error with the loop's fix in it
        raise ValueError(f"evaluation of {policy_path} on {task} stopped early: {result.message}")
    summary = result.summary
    returns = robot.episode_returns
    successes = robot.episode_successes
    return EvalResult(
        policy=str(policy_path),
        task=task,
        profile=profile,
        randomization=randomization,
        episodes=len(returns),
        success_rate=float(np.mean(successes)) if successes else None,
        mean_return=float(np.mean(returns)),
        std_return=float(np.std(returns)),
        latency_p50_us=float(summary["latency_us"]["p50"]),
        latency_p99_us=float(summary["latency_us"]["p99"]),
        fallbacks=int(summary["fallbacks"]),
        interventions={kind: int(n) for kind, n in summary["interventions"].items()},
        video=str(video.path) if video is not None else None,
        video_frames=recorder.frames if recorder is not None else 0,
    )


def resolve_profiles(arg: str) -> list[str]:
    """``--profile``: 'all' -> every shipped profile (envs/profiles/); a directory -> its *.toml files, sorted;
    anything else -> that one profile (a shipped name, a TOML path, or 'none')."""
    if arg == "all":
        return envs.list_profiles()
    path = Path(arg)
    if path.is_dir():
        files = sorted(str(p) for p in path.glob("*.toml"))
        if not files:
            raise ValueError(f"--profile {arg}: the directory holds no .toml profile files. "
                             "Fix: put one TOML file per robot profile there, or pass --profile all")
        return files
    return [arg]


def profile_label(profile: str | None) -> str:
    """'latency_2' for a shipped name, the file's stem for a path, 'none' for none."""
    return "none" if profile is None else Path(profile).stem if profile.endswith(".toml") else profile


@dataclass(frozen=True)
class TransferMatrix:
    """``results[i][j]``: policy i evaluated under profile j."""

    policies: list[str]
    profiles: list[str]
    results: list[list[EvalResult]]

    def to_dict(self) -> dict:
        return {"policies": self.policies, "profiles": [profile_label(p) for p in self.profiles],
                "results": [[r.to_dict() for r in row] for row in self.results]}

    def table(self) -> str:
        """One row per profile; success, mean return and fallbacks for each policy."""
        label_width = max(len("profile"), *(len(profile_label(p)) for p in self.profiles))
        cell = "{:>8} {:>9} {:>9}"
        head = [" " * label_width + "".join(f"  {Path(p).name[-28:]:>28}" for p in self.policies)] if len(
            self.policies) > 1 else []
        head.append(f"{'profile':<{label_width}}" + "".join(
            "  " + cell.format("success", "return", "fallbacks") for _ in self.policies))
        rows = []
        for j, profile in enumerate(self.profiles):
            cells = []
            for row in self.results:
                r = row[j]
                success = "n/a" if r.success_rate is None else f"{r.success_rate:.2f}"
                cells.append("  " + cell.format(success, f"{r.mean_return:.3f}", r.fallbacks))
            rows.append(f"{profile_label(profile):<{label_width}}" + "".join(cells))
        return "\n".join(head + rows)


def evaluate_matrix(
    policies: list[str | Path],
    profiles: list[str],
    task: str | None = None,
    randomization: str = "none",
    episodes: int = 20,
    seed: int = 0,
    safety: SafetyConfig | None = None,
) -> TransferMatrix:
    """Every policy under every profile ('none' for no profile), each as ``evaluate_policy`` with the same
    episodes and seeds, so the cells of one column saw the same episode starts, and the same safety settings
    (default: the robot's)."""
    results = [[evaluate_policy(policy, task=task, profile=None if profile == "none" else profile,
                                randomization=randomization, episodes=episodes, seed=seed, safety=safety)
                for profile in profiles] for policy in policies]
    return TransferMatrix([str(p) for p in policies], list(profiles), results)
