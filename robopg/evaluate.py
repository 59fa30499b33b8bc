"""Evaluate an exported policy file through the robot's control loop against the simulated robot.

This is the deployment code path: ``policies_export.run_loop`` drives ``policies_export.Controller`` (file
checks, observation checks, inference, safety layer) against ``SimRobot``, exactly as it drives a real arm,
optionally under a reality profile (``envs/profiles/``) or a randomisation spec. The only difference from the
robot is the clock: evaluation runs unthrottled (no sleeping) unless ``rate_hz`` is given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from policies_export import Controller
from policies_export.loop import LoopConfig, run_loop
from policies_export.safety import SafetyConfig
from robopg.sim_robot import SimRobot


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
) -> EvalResult:
    """Run ``episodes`` episodes (episode i from seed + i) and score them.

    rate_hz: None runs unthrottled; a number runs the loop in real time at that rate.
    safety: the safety layer's settings (default: the robot's defaults).
    """
    controller = Controller.load(policy_path, safety=safety)
    task = task or controller.metadata.task
    robot = SimRobot(task, seed=seed, randomization=randomization, profile=profile)
    try:
        if robot.obs_dim != controller.obs_dim:
            raise ValueError(
                f"{policy_path} expects {controller.obs_dim} observation values but {task} gives "
                f"{robot.obs_dim}; the policy was trained on {controller.metadata.task}: "
                f"pass --task {controller.metadata.task}"
            )
        loop = LoopConfig(rate_hz=rate_hz, realtime=rate_hz is not None, max_episodes=episodes)
        result = run_loop(controller, robot, loop)
    finally:
        robot.close()
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
    )
