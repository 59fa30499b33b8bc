"""Shaped rewards for the Fetch object tasks: named, unscaled terms times scales from config, each logged.

The Fetch tasks come with a sparse reward (-1 until the object is within the goal threshold) and a "Dense" one
(-distance(object, goal)); neither tells the agent to go to the object first, which is most of the work in
FetchPush and FetchPickAndPlace. `ShapedReward` replaces the task's reward with

    r = reach_scale * reach + goal_scale * goal + success_scale * success
    reach   = -|gripper - (object - reach_offset * unit(goal - object))|   (metres)
    goal    = -|object - goal|             (metres)
    success = 1 if |object - goal| < the task's distance_threshold, else 0

reach_offset > 0 moves the reach target behind the object, on the far side from the goal: where a gripper must
be to push the object toward the goal (FetchPush); 0 targets the object itself (grasping, FetchPickAndPlace).
Everything is computed from the simulator's true state (`infos["clean_obs"]`, before observation noise) where the env
reports it, else from the observation. Each scaled term is returned per step in `infos["reward_terms"]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from envs.fetch import has_object
from envs.layout import ObservationLayout

TERMS = ("reach", "goal", "success")
# Fetch's flat "observation" field starts with the gripper position, then the object position.
GRIP = slice(0, 3)
OBJECT = slice(3, 6)


@dataclass(frozen=True)
class RewardScales:
    """Weight of each named term (see the module docstring); 0 switches a term off."""

    reach: float = 1.0
    goal: float = 2.0
    success: float = 1.0
    reach_offset: float = 0.0
    """Metres behind the object (away from the goal) the reach term targets; 0: the object itself."""

    def as_dict(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in TERMS}


def reward_terms(obs: np.ndarray, layout: ObservationLayout, distance_threshold: float,
                 reach_offset: float = 0.0) -> dict[str, np.ndarray]:
    """Unscaled terms of flat Fetch observations obs (N, dim): name -> (N,) float64."""
    observation = obs[:, layout.slices["observation"]].astype(np.float64)
    goal = obs[:, layout.slices["desired_goal"]].astype(np.float64)
    grip, obj = observation[:, GRIP], observation[:, OBJECT]
    to_goal = np.linalg.norm(obj - goal, axis=-1)
    direction = (goal - obj) / np.maximum(to_goal, 1e-6)[:, None]
    return {
        "reach": -np.linalg.norm(grip - (obj - reach_offset * direction), axis=-1),
        "goal": -to_goal,
        "success": (to_goal < distance_threshold).astype(np.float64),
    }


class ShapedReward(gym.vector.VectorWrapper):
    """Replaces a Fetch object task's reward with the scaled sum of the named terms.

    env: vector env of flat Fetch observations (N, dim) with SAME_STEP autoreset (`envs.make_vec`).
    At an episode end the reward is that of the true final state (`final_info["clean_obs"]`, else
    `final_obs`), never of the new episode's reset observation.
    Adds infos["reward_terms"]: name -> (N,) float64 scaled term of this step.
    """

    def __init__(self, env: gym.vector.VectorEnv, task: str, layout: ObservationLayout, scales: RewardScales):
        super().__init__(env)
        if not has_object(task):
            raise ValueError(
                f"shaped rewards need a Fetch task with an object (Push, Slide, PickAndPlace), got '{task}'. "
                "Fix: use --reward task for this task"
            )
        probe = gym.make(task)
        self.distance_threshold = float(probe.unwrapped.distance_threshold)
        probe.close()
        self.layout = layout
        self.scales = scales.as_dict()
        self.reach_offset = scales.reach_offset

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        obs, _, terminated, truncated, infos = self.env.step(actions)
        state = np.array(infos.get("clean_obs", obs), dtype=np.float32, copy=True)
        for i in np.flatnonzero(terminated | truncated):
            final_info = infos.get("final_info", {})
            state[i] = final_info["clean_obs"][i] if "clean_obs" in final_info else infos["final_obs"][i]
        terms = reward_terms(state, self.layout, self.distance_threshold, self.reach_offset)
        scaled = {name: self.scales[name] * value for name, value in terms.items()}
        infos["reward_terms"] = scaled
        return obs, sum(scaled.values()), terminated, truncated, infos
