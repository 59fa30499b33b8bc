"""Evaluate an exported policy file through the robot's control loop against the simulated robot.

This is the deployment code path: ``policies_export.run_loop`` drives ``policies_export.Controller`` (file
checks, observation checks, inference, safety layer) against ``SimRobot``, exactly as it drives a real arm,
optionally under a reality profile (``envs/profiles/``) or a randomisation spec. The only difference from the
robot is the clock: evaluation runs unthrottled (no sleeping) unless ``rate_hz`` is given.

``evaluate_matrix`` runs several files under several profiles (``--profile all``: every shipped one) into one
table, the transfer matrix; ``evaluate_ablation`` runs one file under a randomisation spec with each parameter in
turn held at its nominal value (``--ablate``: which randomised parameter costs the file its success); ``video``
records the first episodes of an evaluation (robopg/video.py).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import envs
from envs.latency_input import told_latency
from envs.randomization import PAIRS, RandomizationSpec, load_spec
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
    randomization: str | RandomizationSpec = "none",
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
        robot = SimRobot(task, seed=seed, randomization=randomization, profile=profile, observer=recorder,
                         latency_input=told_latency(controller.metadata.observation_layout))
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
        randomization=randomization if isinstance(randomization, str) else randomization.source,
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


def held_at_nominal(spec: RandomizationSpec) -> list[tuple[str, RandomizationSpec]]:
    """(label, spec) per randomised parameter: ``spec`` without it, so that parameter keeps the task's nominal
    value while every other one is still drawn. The two parameters of a PAIRS entry (an object push and its
    probability) go together, labelled by the first."""
    partner = {b: a for a, b in PAIRS}
    out = []
    for name in spec.names:
        if name in partner and partner[name] in spec:
            continue  # held with its pair's first parameter
        dropped = {name} | {b for a, b in PAIRS if a == name}
        kept = tuple(p for p in spec.parameters if p.name not in dropped)
        out.append((name, RandomizationSpec(kept, f"{spec.source} without {name}")))
    return out


@dataclass(frozen=True)
class Ablation:
    """One file under a randomisation spec (``full``) and with each parameter held at nominal (``held``)."""

    full: EvalResult
    held: list[tuple[str, EvalResult]]

    def to_dict(self) -> dict:
        return {"full": self.full.to_dict(), "held_at_nominal": {name: r.to_dict() for name, r in self.held}}

    def table(self) -> str:
        """One row per parameter, largest success gain first: what holding it at nominal gives back."""
        def rate(r: EvalResult) -> float:
            return float("nan") if r.success_rate is None else r.success_rate

        width = max(len("every parameter drawn"), *(len(name) for name, _ in self.held))
        lines = [f"{'held at nominal':<{width}}  {'success':>8} {'change':>7} {'return':>9} {'fallbacks':>9}",
                 f"{'every parameter drawn':<{width}}  {rate(self.full):>8.2f} {'':>7} "
                 f"{self.full.mean_return:>9.3f} {self.full.fallbacks:>9}"]
        ordered = sorted(self.held, key=lambda item: (-(rate(item[1]) - rate(self.full)), item[0]))
        for name, r in ordered:
            lines.append(f"{name:<{width}}  {rate(r):>8.2f} {rate(r) - rate(self.full):>+7.2f} "
                         f"{r.mean_return:>9.3f} {r.fallbacks:>9}")
        return "\n".join(lines)


def evaluate_ablation(
    policy: str | Path,
    randomization: str | Path | RandomizationSpec,
    task: str | None = None,
    profile: str | None = None,
    episodes: int = 50,
    seed: int = 0,
    safety: SafetyConfig | None = None,
) -> Ablation:
    """``policy`` under ``randomization`` (plus ``profile``'s fixed values, if given), then once per randomised
    parameter with that one held at nominal (``held_at_nominal``), every run on the same episode seeds (the draws
    of the parameters after the held one in the spec differ, as one fewer value is drawn per episode). A row
    whose success rises the most names the parameter the file copes with worst; with 50 episodes a difference
    below ~0.1 is within one binomial std of two cells."""
    spec = load_spec(randomization)
    if not len(spec):
        raise ValueError(f"--ablate holds each randomised parameter at nominal in turn, and the spec "
                         f"'{randomization}' randomises none. Fix: pass --randomization with a spec (e.g. sim2real "
                         "or the training run's)")

    def run(s: RandomizationSpec) -> EvalResult:
        return evaluate_policy(policy, task=task, profile=profile, randomization=s, episodes=episodes, seed=seed,
                               safety=safety)

    return Ablation(run(spec), [(name, run(held)) for name, held in held_at_nominal(spec)])
