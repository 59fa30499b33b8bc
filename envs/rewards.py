"""Shaped and staged rewards for the Fetch object tasks: named, unscaled terms times scales from config, each logged.

The Fetch tasks come with a sparse reward (-1 until the object is within the goal threshold) and a "Dense" one
(-distance(object, goal)); neither tells the agent to go to the object first, which is most of the work in
FetchPush and FetchPickAndPlace. `ShapedReward` replaces the task's reward with

    r = reach_scale * reach + goal_scale * goal + success_scale * success
    reach   = -|gripper - (object - reach_offset * unit(goal - object))|   (metres)
    goal    = -|object - goal|             (metres)
    success = 1 if |object - goal| < the task's distance_threshold, else 0

reach_offset > 0 moves the reach target behind the object, on the far side from the goal: where a gripper must
be to push the object toward the goal (FetchPush); 0 targets the object itself (grasping, FetchPickAndPlace).
`StagedReward` (`--reward staged`) is the bounded, staged form the manipulation presets use (after ManiSkill3's
PushCube/PickCube and Isaac Lab's lift rewards): every term lies in [0, 1],

    reach   = 1 - tanh(sharpness * |gripper - reach target|)
    grasp   = 1 if both fingers touch the object (infos["grasped"], envs/contacts.py), else 0
    lift    = grasp * clip((object height - its start height) / lift_height, 0, 1)
    place   = gate * (1 - tanh(sharpness * |object - goal|))
    success = 1 if |object - goal| < the task's distance_threshold (and, with settle_distance > 0, the object
              moved less than settle_distance over the step: an object sliding through the goal is not a success)

where gate is 1, "reached" (latched for the rest of the episode once the gripper came within reached_distance of
the reach target) or grasp. r = sum(scale * term) / sum(scales), and a success step gets the maximum, 1: so the
return per step is in [0, 1] whatever the scales, and succeeding always pays more than any approach to it.
An optional action-rate penalty (Isaac Lab's manipulation rewards have one) is then subtracted on every step:

    action_rate = mean over action dimensions of ((a_t - a_{t-1}) / (high - low))^2      in [0, 1]

scaled by its own weight (not part of the normalisation), 0 on an episode's first step; the reward then lies in
[-action_rate scale, 1].

Everything is computed from the simulator's true state (`infos["clean_obs"]`, before observation noise) where the env
reports it, else from the observation. Each scaled term is returned per step in `infos["reward_terms"]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import gymnasium as gym
import numpy as np

from envs.contacts import GRASPED
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


def object_task_constants(task: str, reward: str) -> tuple[float, bool]:
    """(the task's success distance threshold, whether its fingers are free) of a Fetch object task; a clear
    error for a task without an object, where ``reward`` rewards need one."""
    if not has_object(task):
        raise ValueError(
            f"{reward} rewards need a Fetch task with an object (Push, Slide, PickAndPlace), got '{task}'. "
            "Fix: use --reward task for this task"
        )
    probe = gym.make(task)
    try:
        return float(probe.unwrapped.distance_threshold), not bool(probe.unwrapped.block_gripper)
    finally:
        probe.close()


class ShapedReward(gym.vector.VectorWrapper):
    """Replaces a Fetch object task's reward with the scaled sum of the named terms.

    env: vector env of flat Fetch observations (N, dim) with SAME_STEP autoreset (`envs.make_vec`).
    At an episode end the reward is that of the true final state (`final_info["clean_obs"]`, else
    `final_obs`), never of the new episode's reset observation.
    Adds infos["reward_terms"]: name -> (N,) float64 scaled term of this step.
    """

    def __init__(self, env: gym.vector.VectorEnv, task: str, layout: ObservationLayout, scales: RewardScales):
        super().__init__(env)
        self.distance_threshold, _ = object_task_constants(task, "shaped")
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


STAGED_TERMS = ("reach", "grasp", "lift", "place", "success")
Z = 2  # index of the height in a position


class PlaceGate(StrEnum):
    """What the place term waits for."""

    NONE = "none"  # always counted
    REACHED = "reached"  # the gripper has reached the reach target once this episode (latched): pushing
    GRASPED = "grasped"  # the object is held now: picking


@dataclass(frozen=True)
class StagedScales:
    """Weights of the staged terms (0 switches a term off) and their shapes; see the module docstring."""

    reach: float = 1.0
    grasp: float = 0.0
    lift: float = 0.0
    place: float = 1.0
    success: float = 1.0
    reach_offset: float = 0.0
    """Metres behind the object (away from the goal) the reach term targets; 0: the object itself."""
    sharpness: float = 5.0
    """k of 1 - tanh(k d), 1/m: the term is 0.76 at 5 cm and 0.24 at 25 cm for k = 5."""
    reached_distance: float = 0.03
    """The reach target counts as reached within this many metres (latches the "reached" gate)."""
    place_gate: PlaceGate = PlaceGate.NONE
    lift_height: float = 0.05
    """Metres above its start height at which the lift term saturates."""
    action_rate: float = 0.0
    """Weight of the action-rate penalty subtracted from every step's reward (module docstring); 0: off."""
    settle_distance: float = 0.0
    """Metres per control step: success counts only while the object moved less than this over the step, so a push
    that slides the object through the goal earns the shaped terms but not success's maximum; 0: off."""

    def __post_init__(self) -> None:
        weights = [getattr(self, name) for name in STAGED_TERMS]
        if not self.action_rate >= 0:
            raise ValueError(f"staged reward action_rate must be >= 0, got {self.action_rate}")
        if not self.settle_distance >= 0:
            raise ValueError(f"staged reward settle_distance must be >= 0 (0: off), got {self.settle_distance}")
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"staged reward scales must be >= 0 with a positive sum, got {dict(zip(STAGED_TERMS, weights, strict=True))}")
        if self.sharpness <= 0 or self.reached_distance <= 0 or self.lift_height <= 0:
            raise ValueError("staged reward sharpness, reached_distance and lift_height must be > 0")
        object.__setattr__(self, "place_gate", PlaceGate(self.place_gate))

    @property
    def needs_grasp(self) -> bool:
        return self.grasp > 0 or self.lift > 0 or self.place_gate is PlaceGate.GRASPED

    def weights(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in STAGED_TERMS}


def staged_terms(obs: np.ndarray, layout: ObservationLayout, distance_threshold: float, scales: StagedScales,
                 grasped: np.ndarray, reached: np.ndarray, start_height: np.ndarray,
                 object_step: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Unscaled staged terms of flat Fetch observations obs (N, dim): name -> (N,) float64, each in [0, 1].

    grasped (N,) 0/1, reached (N,) bool (the latched gate, including this step), start_height (N,) the object's
    height at the episode's start, object_step (N,) metres the object moved over the step (needed when
    scales.settle_distance > 0)."""
    observation = obs[:, layout.slices["observation"]].astype(np.float64)
    goal = obs[:, layout.slices["desired_goal"]].astype(np.float64)
    obj = observation[:, OBJECT]
    to_goal = np.linalg.norm(obj - goal, axis=-1)
    grasp = np.asarray(grasped, dtype=np.float64)
    gate = {PlaceGate.NONE: np.ones_like(grasp), PlaceGate.REACHED: reached.astype(np.float64),
            PlaceGate.GRASPED: grasp}[scales.place_gate]
    success = to_goal < distance_threshold
    if scales.settle_distance > 0:
        if object_step is None:
            raise ValueError("settle_distance > 0 needs object_step, the object's displacement over the step")
        success &= np.asarray(object_step) < scales.settle_distance
    return {
        "reach": 1.0 - np.tanh(scales.sharpness * reach_distance(obs, layout, scales.reach_offset)),
        "grasp": grasp,
        "lift": grasp * np.clip((obj[:, Z] - start_height) / scales.lift_height, 0.0, 1.0),
        "place": gate * (1.0 - np.tanh(scales.sharpness * to_goal)),
        "success": success.astype(np.float64),
    }


def reach_distance(obs: np.ndarray, layout: ObservationLayout, reach_offset: float) -> np.ndarray:
    """(N,) |gripper - reach target|, the target reach_offset metres behind the object on the goal-object line."""
    return -reward_terms(obs, layout, 1.0, reach_offset)["reach"]


def staged_reward(terms: dict[str, np.ndarray], scales: StagedScales) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """r = sum(scale * term) / sum(scales), 1 on success steps; returns (r (N,), name -> (N,) normalised scaled
    term, whose sum is r except on success steps)."""
    weights = scales.weights()
    total = sum(weights.values())
    scaled = {name: weights[name] * terms[name] / total for name in STAGED_TERMS}
    reward = np.where(terms["success"] > 0, 1.0, sum(scaled.values()))
    return reward, scaled


class StagedReward(gym.vector.VectorWrapper):
    """Replaces a Fetch object task's reward with the staged reward (module docstring), in [0, 1] per step.

    env: vector env of flat Fetch observations (N, dim) with SAME_STEP autoreset (`envs.make_vec`); with a grasp or
    lift term or the grasped gate it must report infos["grasped"] (FetchPickAndPlace on every backend). Keeps per
    environment the latched "reached" gate and the object's start height, both reset with each episode.
    At an episode end the reward is that of the true final state. Adds infos["reward_terms"] (normalised scaled
    terms, as `staged_reward`).
    """

    def __init__(self, env: gym.vector.VectorEnv, task: str, layout: ObservationLayout, scales: StagedScales):
        super().__init__(env)
        self.distance_threshold, free_fingers = object_task_constants(task, "staged")
        if scales.needs_grasp and not free_fingers:
            raise ValueError(
                f"{task} holds its fingers closed, so nothing is ever grasped; the grasp and lift terms and the "
                "grasped gate need FetchPickAndPlace. Fix: set grasp_scale = lift_scale = 0 and place_gate to "
                "reached or none"
            )
        self.layout, self.scales = layout, scales
        n = env.num_envs
        self.reached = np.zeros(n, dtype=bool)
        self.start_height = np.zeros(n)
        space = env.single_action_space
        self.action_low, self.action_high = space.low.astype(np.float64), space.high.astype(np.float64)
        self.last_action = np.zeros((n, space.shape[0]))
        self.first_step = np.ones(n, dtype=bool)  # no previous action of this episode yet
        self.last_object = np.zeros((n, 3))  # the object's position after the previous step (settle_distance)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, infos = self.env.reset(**kwargs)
        self.reached[:] = False
        start = np.asarray(infos.get("clean_obs", obs))
        self.start_height[:] = self._object_height(start)
        self.last_object[:] = self._object(start)
        self.first_step[:] = True
        return obs, infos

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        obs, _, terminated, truncated, infos = self.env.step(actions)
        current = np.asarray(infos.get("clean_obs", obs))
        state = np.array(current, dtype=np.float32, copy=True)
        grasped = np.array(infos.get(GRASPED, np.zeros(len(obs))), dtype=np.float64, copy=True)
        ended = np.flatnonzero(terminated | truncated)
        final_info = infos.get("final_info", {})
        for i in ended:
            state[i] = final_info["clean_obs"][i] if "clean_obs" in final_info else infos["final_obs"][i]
            if GRASPED in final_info:
                grasped[i] = final_info[GRASPED][i]
        if self.scales.needs_grasp and GRASPED not in infos:
            raise ValueError("the env reports no infos['grasped']; build it with envs.make_vec (FetchPickAndPlace)")
        self.reached |= reach_distance(state, self.layout, self.scales.reach_offset) < self.scales.reached_distance
        settling = self.scales.settle_distance > 0
        object_step = np.linalg.norm(self._object(state) - self.last_object, axis=-1) if settling else None
        terms = staged_terms(state, self.layout, self.distance_threshold, self.scales, grasped, self.reached,
                             self.start_height, object_step)
        reward, scaled = staged_reward(terms, self.scales)
        if self.scales.action_rate > 0:
            penalty = self.scales.action_rate * self._action_rate(actions)
            reward = reward - penalty
            scaled["action_rate"] = -penalty
        # The new episodes of the environments that reset: gate cleared, start height from their reset state.
        self.reached[ended] = False
        self.start_height[ended] = self._object_height(current[ended])
        if settling:  # where the object is now: the end of this step, or a new episode's start
            self.last_object[:] = self._object(current)
        self.first_step[ended] = True
        infos["reward_terms"] = scaled
        return obs, reward, terminated, truncated, infos

    def _action_rate(self, actions: np.ndarray) -> np.ndarray:
        """(N,) mean over dimensions of the squared change from the last action, in units of each dimension's range
        (actions clipped into the bounds first), 0 on an episode's first step; remembers ``actions``."""
        low, high = self.action_low, self.action_high
        unit = (np.clip(np.asarray(actions, np.float64), low, high) - low) / (high - low)
        rate = np.where(self.first_step, 0.0, np.mean((unit - self.last_action) ** 2, axis=1))
        self.last_action[:] = unit
        self.first_step[:] = False
        return rate

    def _object(self, obs: np.ndarray) -> np.ndarray:
        """(N, 3) the object's position, float64."""
        return obs[:, self.layout.slices["observation"]][:, OBJECT].astype(np.float64)

    def _object_height(self, obs: np.ndarray) -> np.ndarray:
        return self._object(obs)[:, Z]
