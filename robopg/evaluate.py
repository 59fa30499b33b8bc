"""Evaluate an exported policy file through the robot's Controller against the simulated robot.

This is the deployment code path: the same ``policies_export.Controller`` that runs on the robot reads the
file, checks each observation and acts; the simulator stands in for the robot, optionally under a reality
profile (``envs/profiles/``) or a randomisation spec.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import envs
from policies_export import Controller


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
    latency_p50_us: float  # controller.act: observation checks + inference + safety clip
    latency_p99_us: float
    fallbacks: int  # safe actions substituted by the controller

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_policy(
    policy_path: str | Path,
    task: str | None = None,
    profile: str | None = "nominal",
    randomization: str = "none",
    episodes: int = 20,
    seed: int = 0,
) -> EvalResult:
    controller = Controller.load(policy_path)
    task = task or controller.metadata.task
    env = envs.make_env(task, seed=seed, randomization=randomization, profile=profile)
    obs_dim = env.get_wrapper_attr("layout").dim
    if obs_dim != controller.obs_dim:
        env.close()
        raise ValueError(
            f"{policy_path} expects {controller.obs_dim} observation values but {task} gives {obs_dim}; "
            f"the policy was trained on {controller.metadata.task}: pass --task {controller.metadata.task}"
        )
    returns, successes, latencies = [], [], []
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            controller.reset()
            total, done, info_step = 0.0, False, {}
            while not done:
                t0 = time.perf_counter_ns()
                action = controller.act(obs)
                latencies.append(time.perf_counter_ns() - t0)
                obs, reward, terminated, truncated, info_step = env.step(action)
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
            if "is_success" in info_step:
                successes.append(float(info_step["is_success"]))
    finally:
        env.close()
    lat_us = np.asarray(latencies, dtype=np.float64) / 1e3
    fallbacks = int(sum(controller.stats["fallbacks"].values()))
    return EvalResult(
        policy=str(policy_path),
        task=task,
        profile=profile,
        randomization=randomization,
        episodes=episodes,
        success_rate=float(np.mean(successes)) if successes else None,
        mean_return=float(np.mean(returns)),
        std_return=float(np.std(returns)),
        latency_p50_us=float(np.percentile(lat_us, 50)),
        latency_p99_us=float(np.percentile(lat_us, 99)),
        fallbacks=fallbacks,
    )
