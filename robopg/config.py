"""Typed configuration: one dataclass per component, a help text per field, checked at construction.

The CLI builds its flags from these dataclasses (``robopg train --help`` lists every field), a config file
(TOML or JSON, one table per section) sets any of them, and flags override the file. The resolved
configuration is written into the run directory as ``config.json`` and read back by ``--resume``.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import MISSING, asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from envs import Backend
from envs.rewards import PlaceGate
from robopg.field_types import checked_values
from robopg.presets import preset_sections


def option(default: Any, help: str) -> Any:  # noqa: A002 - "help" mirrors argparse
    """A dataclass field whose help text the CLI shows."""
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for sequence defaults")
    return field(default=default, metadata={"help": help})


class Reward(StrEnum):
    TASK = "task"  # the task's own reward (sparse, or -distance for the Dense ids)
    SHAPED = "shaped"  # named terms reach + goal + success times the *_scale fields (envs/rewards.py)
    STAGED = "staged"  # bounded staged terms reach, grasp, lift, place, success in [0, 1] (envs/rewards.py)


class Activation(StrEnum):
    TANH = "tanh"
    ELU = "elu"
    RELU = "relu"


class Recurrent(StrEnum):
    """``--recurrent``: the actor's memory (robopg/modules/recurrent.py)."""

    NONE = "none"  # feed-forward: an MLP on the current policy input
    LSTM = "lstm"
    GRU = "gru"


class LRSchedule(StrEnum):
    CONSTANT = "constant"
    LINEAR = "linear"
    ADAPTIVE = "adaptive"


class OptimizerKind(StrEnum):
    """The gradient-descent optimiser of A2C/A3C."""

    ADAM = "adam"
    RMSPROP = "rmsprop"  # alpha 0.99, eps 1e-5: Mnih et al. 2016's A3C optimiser, as Stable-Baselines3's A2C uses it


class Algo(StrEnum):
    """``--algo``: the policy-gradient family of the lecture; each has a config section of the same name
    (dashes become underscores: ``ppo-kl`` -> ``[ppo_kl]``)."""

    PPO = "ppo"
    PPO_KL = "ppo-kl"
    TRPO = "trpo"
    A2C = "a2c"
    A3C = "a3c"
    REINFORCE = "reinforce"

    @property
    def section(self) -> str:
        return self.value.replace("-", "_")


class Tracker(StrEnum):
    """``--logger``: where each iteration's scalars go besides metrics.csv (robopg/tracking.py)."""

    TENSORBOARD = "tensorboard"  # RUN_DIR/tb event files
    WANDB = "wandb"  # Weights & Biases; offline by default (RUN_DIR/wandb, `wandb sync` uploads later)
    MLFLOW = "mlflow"  # MLflow; a SQLite store in RUN_DIR unless mlflow_tracking_uri names another


class WandbMode(StrEnum):
    OFFLINE = "offline"  # no network: the run is written under RUN_DIR/wandb
    ONLINE = "online"  # streamed to the W&B server (needs a login)


class Device(StrEnum):
    """``--device``: where the policy and its update run; the environments always step on the CPU."""

    CPU = "cpu"
    CUDA = "cuda"  # under torchrun: GPU number LOCAL_RANK of the node, one rank per GPU


class AdvantageEstimator(StrEnum):
    """How A2C/A3C estimate A(x_t, u_t) from a rollout of T steps."""

    TD = "td"  # r_t + gamma V(x_{t+1}) - V(x_t): the lecture's one-step advantage (GAE lambda = 0)
    NSTEP = "nstep"  # sum of rewards to the rollout's end + bootstrapped V, minus V (Mnih et al. 2016; lambda = 1)
    GAE = "gae"  # exponentially weighted n-step advantages with gae_lambda (Schulman et al. 2016)


class CriticTarget(StrEnum):
    """Regression target of the critic (the lecture's "fit V with MC or TD targets")."""

    MC = "mc"  # G_t: discounted rewards until the episode ends (bootstrapped only where the rollout cuts it)
    TD = "td"  # r_t + gamma V(x_{t+1}) with the current critic


class ReturnType(StrEnum):
    """What multiplies grad log pi(u_t | x_t) in REINFORCE."""

    FULL = "full"  # r(tau): the whole trajectory's return, for every step of it
    REWARD_TO_GO = "reward_to_go"  # sum_{t' >= t} gamma^(t'-t) r_t': causality, lower variance


class Baseline(StrEnum):
    """b subtracted from the return in REINFORCE."""

    NONE = "none"
    AVERAGE = "average"  # b = mean return of the batch
    VALUE = "value"  # b(x_t) = V(x_t), a learned critic fitted to the Monte-Carlo returns


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class EnvConfig:
    task: str = option("FetchReachDense-v4", "Gymnasium task id with a Box action space, e.g. FetchPush-v4.")
    num_envs: int = option(16, "Environments stepped together per rollout step, per rank under torchrun (one "
                           "update then learns from ranks x num_envs x rollout_steps samples).")
    randomization: str = option("default", "Domain randomisation: none, a shipped spec (default, sim2real) or a path "
                                "to a TOML spec.")
    backend: Backend = option(Backend.AUTO, "Vector backend: auto (batched for the Fetch tasks, sync otherwise), "
                              "batched (Fetch tasks in MuJoCo's thread pool), sync (in-process) or subprocess.")
    reward: Reward = option(Reward.TASK, "task (the task's own sparse/Dense reward), shaped (Fetch object tasks: "
                            "reach_scale * -|gripper - reach target| + goal_scale * -|object - goal| + success_scale * "
                            "success) or staged (Fetch object tasks: bounded terms reach, grasp, lift, place, success "
                            "in [0, 1], normalised by the sum of their scales, 1 on success; envs/rewards.py).")
    reach_scale: float = option(1.0, "Shaped reward: weight of the reach term -|gripper - reach target| (metres).")
    reach_offset: float = option(0.0, "Shaped reward: the reach target lies this many metres behind the object, away "
                                 "from the goal (where a push starts; 0.05 suits FetchPush); 0 = the object itself.")
    goal_scale: float = option(2.0, "Shaped reward: weight of the goal term -|object - goal| (metres).")
    success_scale: float = option(1.0, "Shaped/staged reward: weight of the success term (1 per step within the threshold).")
    grasp_scale: float = option(0.0, "Staged reward: weight of the grasp term (both fingers touch the object).")
    lift_scale: float = option(0.0, "Staged reward: weight of the lift term (grasped and raised up to lift_height).")
    place_scale: float = option(1.0, "Staged reward: weight of the place term 1 - tanh(k |object - goal|).")
    reward_sharpness: float = option(5.0, "Staged reward: k of 1 - tanh(k d) in the reach and place terms (1/m).")
    reached_distance: float = option(0.03, "Staged reward: the reach target counts as reached within this (m).")
    place_gate: PlaceGate = option(PlaceGate.NONE, "Staged reward: the place term counts always (none), once the "
                                   "reach target was reached this episode (reached), or while grasped (grasped).")
    lift_height: float = option(0.05, "Staged reward: metres above its start height where the lift term saturates.")
    action_rate_scale: float = option(0.0, "Staged reward: weight of the action-rate penalty, subtracted from each "
                                      "step's reward: scale x the mean over action dimensions of ((a_t - a_{t-1}) / "
                                      "range)^2, in [0, scale] (0: off).")
    settle_distance: float = option(0.0, "Staged reward: success counts only while the object moved less than this "
                                    "many metres over the control step, so sliding it through the goal earns no "
                                    "success (0: off). Training only: evaluation scores the task's own success.")
    near_grasp_fraction: float = option(0.0, "Training only (batched backend): fraction of resets with the object "
                                        "already held in the gripper (FetchPickAndPlace). Evaluation never uses it.")
    air_goal_fraction: float = option(-1.0, "Training only (batched backend): fraction of in-air goals (-1: the "
                                      "task's own, 0.5 for FetchPickAndPlace). Evaluation never uses it.")
    air_goal_ramp_steps: int = option(0, "Training only: raise the in-air goal fraction linearly from "
                                      "air_goal_fraction to the task's 0.5 over this many env steps (0: no ramp).")
    obs_history: int = option(1, "Policy input holds the last K observations, newest last (1: the current one only).")
    action_history: int = option(0, "Policy input also holds the last M actions sent to the robot, newest last (0: none).")
    latency_input: bool = option(
        False, "The policy is told the episode's action latency: one more observation value, the latency in control "
        "steps (0 without an action_latency in the spec), which on the robot the driver measures and fills in "
        "(envs/latency_input.py). Off: the policy infers the delay from what it sees."
    )

    def __post_init__(self) -> None:
        _check(self.num_envs >= 1, f"num_envs must be >= 1, got {self.num_envs}; pass --num-envs 16, say")
        _check(self.obs_history >= 1,
               f"obs_history must be >= 1 (the current observation counts), got {self.obs_history}; pass --obs-history 1")
        _check(self.action_history >= 0,
               f"action_history must be >= 0, got {self.action_history}; pass --action-history 0 for no past actions")
        object.__setattr__(self, "backend", Backend(self.backend))
        object.__setattr__(self, "reward", Reward(self.reward))
        object.__setattr__(self, "place_gate", PlaceGate(self.place_gate))
        _check(self.reach_offset >= 0, f"reach_offset must be >= 0 metres, got {self.reach_offset}")
        _check(0 <= self.near_grasp_fraction <= 1,
               f"near_grasp_fraction must be in [0, 1], got {self.near_grasp_fraction}; pass --near-grasp-fraction 0.1, say")
        _check(self.air_goal_fraction == -1 or 0 <= self.air_goal_fraction <= 1,
               f"air_goal_fraction must be -1 (the task's own) or in [0, 1], got {self.air_goal_fraction}")
        _check(self.air_goal_ramp_steps >= 0, f"air_goal_ramp_steps must be >= 0, got {self.air_goal_ramp_steps}")
        _check(self.air_goal_ramp_steps == 0 or self.air_goal_fraction >= 0,
               "air_goal_ramp_steps ramps up from air_goal_fraction: set --air-goal-fraction 0 (say) with it")


@dataclass(frozen=True)
class AdrConfig:
    """Automatic domain randomisation (OpenAI et al. 2019, "Solving Rubik's Cube with a Robot Hand"): every
    uniform/loguniform range of the --randomization spec becomes a limit; training starts at the nominal value
    and each range boundary moves outward (inward) by a step when the success rate of episodes pinned to it
    passes success_high (falls below success_low). Flags: --adr, --adr-buffer-size, ..."""

    FLAG_PREFIX: ClassVar[str] = "adr"
    enabled: bool = option(False, "Use ADR on the ranges of --randomization (which then give the limits).")
    boundary_probability: float = option(
        0.5, "Fraction of episodes that pin one parameter at one of its current range boundaries to measure it.")
    buffer_size: int = option(20, "Boundary episodes averaged before that boundary moves (m in the paper).")
    success_high: float = option(0.6, "Widen a boundary when its success rate reaches this (t_H).")
    success_low: float = option(0.2, "Narrow a boundary when its success rate falls to this (t_L).")
    step_fraction: float = option(0.1, "Boundary step as a fraction of the limit range (latency: at least 1 step).")

    def __post_init__(self) -> None:
        _check(0 < self.boundary_probability <= 1,
               f"boundary_probability must be in (0, 1], got {self.boundary_probability}")
        _check(self.buffer_size >= 1, f"buffer_size must be >= 1, got {self.buffer_size}")
        _check(0 <= self.success_low < self.success_high <= 1,
               f"need 0 <= success_low < success_high <= 1, got {self.success_low} and {self.success_high}")
        _check(0 < self.step_fraction <= 1, f"step_fraction must be in (0, 1], got {self.step_fraction}")


@dataclass(frozen=True)
class CurriculumConfig:
    """A randomisation curriculum (robopg/curriculum.py): every range of --randomization starts at its nominal value
    and widens with one factor alpha from `start` to 1 over ramp_steps env steps of rollouts whose training success
    reached success_gate. Flags: --curriculum, --curriculum-ramp-steps, ..."""

    FLAG_PREFIX: ClassVar[str] = "curriculum"
    enabled: bool = option(False, "Ramp the ranges of --randomization from nominal to full width.")
    ramp_steps: int = option(2_000_000, "Env steps (of gated rollouts) from width 0 to the full ranges.")
    success_gate: float = option(0.5, "Widen only after rollouts whose training success rate reached this (0: always).")
    # Off, a rollout in which no episode ended never passes the gate, so with 32-step rollouts of 50-step episodes
    # only 16 of every 25 rollouts can widen and ramp_steps takes ~1.56x as many env steps (docs/sim2real.md, 5b).
    hold_verdict: bool = option(
        False, "A rollout in which no episode ended keeps the gate's verdict on the last one in which some did "
        "(off: it never passes the gate), so the ramp advances at ramp_steps' own pace while training succeeds."
    )
    start: float = option(0.0, "Width alpha at the first step (0: nominal values, 1: the full ranges).")
    latency_ramp_steps: int = option(
        0, "Gated env steps from no latency to the spec's full latency range (0: ramp_steps, with everything else); "
        "shorter puts the delays in early, so the policy trains on the longest delay for longer."
    )
    latency_start: float = option(
        0.0, "Width of the latency ranges from the first step on, a floor under their ramp (1: the spec's full "
        "latency range throughout, everything else still ramped)."
    )

    def __post_init__(self) -> None:
        _check(self.ramp_steps >= 1, f"ramp_steps must be >= 1, got {self.ramp_steps}")
        _check(self.latency_ramp_steps >= 0, f"latency_ramp_steps must be >= 0 (0: ramp_steps), got "
               f"{self.latency_ramp_steps}")
        _check(0 <= self.success_gate <= 1, f"success_gate must be in [0, 1], got {self.success_gate}")
        _check(0 <= self.start <= 1, f"start must be in [0, 1], got {self.start}")
        _check(0 <= self.latency_start <= 1, f"latency_start must be in [0, 1] (1: full latency from the first "
               f"step), got {self.latency_start}")


DEFAULT_INIT_LOG_STD = -0.5
"""The Gaussian's initial log std where neither [policy] nor the algorithm sets one."""


@dataclass(frozen=True)
class PolicyConfig:
    hidden_sizes: tuple[int, ...] = option((64, 64), "Hidden layer widths of actor and critic MLPs.")
    activation: Activation = option(Activation.TANH, "Hidden activation: tanh, elu or relu.")
    init_log_std: float | None = option(
        None, "Initial log standard deviation of the Gaussian (state-independent), in the policy's normalised "
        "action space [-1, 1]; unset: the algorithm's (a2c, a3c and reinforce -1.0, the others -0.5)."
    )
    obs_clip: float = option(10.0, "Normalised observations are clipped to +-obs_clip.")
    shared_trunk: bool = option(
        False, "Actor and critic share their hidden layers (two heads on one trunk) instead of two networks."
    )
    asymmetric_critic: bool = option(
        False, "The critic sees privileged inputs (noiseless state and the true randomised parameters); only the "
        "actor is exported. Needs a MuJoCo task from envs (the privileged infos) and separate networks."
    )
    critic_action_history: bool = option(
        False, "With asymmetric_critic and action_history: the critic also sees the actor's action history. Under "
        "action latency those are the commands still in the pipeline, which decide the next steps: without them "
        "the critic's input does not determine the future (docs/sim2real.md)."
    )
    latency_aligned_advantages: bool = option(
        False, "With asymmetric_critic and an action_latency in the randomisation spec: each action's advantage is "
        "read at the step where it executes (its episode's latency later; robopg/advantages.py latency_aligned), "
        "not where it was chosen. The critic must not see the queued commands (no critic_action_history)."
    )
    recurrent: Recurrent = option(
        Recurrent.NONE, "none (MLP actor), lstm or gru: the actor is an LSTM/GRU on the policy input with an MLP head "
        "of hidden_sizes, trained on whole env sequences; the critic has its own LSTM/GRU, or with asymmetric_critic "
        "is an MLP on the privileged inputs. The exported file takes and returns the actor's state."
    )
    rnn_hidden_size: int = option(128, "Recurrent policy: units of each LSTM/GRU layer (actor and recurrent critic).")
    rnn_layers: int = option(1, "Recurrent policy: stacked LSTM/GRU layers.")
    sde: bool = option(
        False, "State-dependent exploration (gSDE, robopg/modules/sde.py): the noise is the actor's last hidden "
        "features times a matrix drawn per env at each rollout's start, so it persists over the rollout; "
        "init_log_std then starts the log std of that matrix's entries. a2c, a3c and reinforce; feed-forward only."
    )

    def __post_init__(self) -> None:
        _check(not (self.asymmetric_critic and self.shared_trunk),
               "asymmetric_critic needs separate actor and critic networks; drop --shared-trunk")
        _check(not self.critic_action_history or self.asymmetric_critic,
               "critic_action_history adds the action history to an asymmetric critic's input (a plain critic sees "
               "the actor's input, history included); pass --asymmetric-critic or drop --critic-action-history")
        _check(not self.latency_aligned_advantages or (self.asymmetric_critic and not self.critic_action_history),
               "latency_aligned_advantages needs a critic that sees the state but not the commands still queued (its "
               "baseline for an action must not know the action): pass --asymmetric-critic and drop "
               "--critic-action-history, or drop --latency-aligned-advantages")
        object.__setattr__(self, "recurrent", Recurrent(self.recurrent))
        _check(not (self.recurrent is not Recurrent.NONE and self.shared_trunk),
               "a recurrent policy gives actor and critic a memory each (the value loss must not shape the actor's); "
               "drop --shared-trunk")
        _check(self.rnn_hidden_size >= 1, f"rnn_hidden_size must be >= 1, got {self.rnn_hidden_size}; "
               "pass --rnn-hidden-size 128, say")
        _check(self.rnn_layers >= 1, f"rnn_layers must be >= 1, got {self.rnn_layers}; pass --rnn-layers 1")
        _check(not (self.sde and self.recurrent is not Recurrent.NONE),
               "--sde draws its noise from a feed-forward actor's last hidden layer; drop --sde or --recurrent")
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))
        object.__setattr__(self, "activation", Activation(self.activation))
        _check(
            len(self.hidden_sizes) > 0 and all(h > 0 for h in self.hidden_sizes),
            f"hidden_sizes must be positive widths, got {self.hidden_sizes}; pass --hidden-sizes 64 64",
        )
        _check(self.obs_clip > 0, f"obs_clip must be > 0, got {self.obs_clip}")


@dataclass(frozen=True)
class _Fields:
    """Base of the algorithm sections and of the field groups several of them share (declared once below).
    Each class checks its own fields in ``__post_init__`` and hands on to the next one in the MRO."""

    def __post_init__(self) -> None:
        pass


@dataclass(frozen=True)
class OnPolicyConfig(_Fields):
    """What every algorithm shares: how much to collect per update, the discount and the optimiser basics."""

    INIT_LOG_STD: ClassVar[float] = DEFAULT_INIT_LOG_STD
    """The policy's initial log std where [policy] init_log_std is unset (``TrainConfig.init_log_std``)."""

    rollout_steps: int = option(64, "Steps per environment per rollout (T); a rollout has T * num_envs samples.")
    gamma: float = option(0.95, "Discount factor.")
    learning_rate: float = option(1e-3, "Adam learning rate.")
    max_grad_norm: float = option(1.0, "Global gradient-norm clip.")
    normalize_advantages: bool = option(True, "Normalise advantages to zero mean, unit std before the update.")

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.rollout_steps >= 1, f"rollout_steps must be >= 1, got {self.rollout_steps}")
        _check(0 < self.gamma <= 1, f"gamma must be in (0, 1], got {self.gamma}")
        _check(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}")
        _check(self.max_grad_norm > 0, f"max_grad_norm must be > 0, got {self.max_grad_norm}")


@dataclass(frozen=True)
class GAEFields(_Fields):
    """The GAE estimator's lambda (PPO, PPO-KL, TRPO, A2C/A3C)."""

    gae_lambda: float = option(0.95, "GAE lambda (A2C/A3C: used when advantage = gae).")

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(0 <= self.gae_lambda <= 1, f"gae_lambda must be in [0, 1], got {self.gae_lambda}")


@dataclass(frozen=True)
class MinibatchFields(_Fields):
    """Epochs x minibatches of the surrogate's SGD (PPO, PPO-KL)."""

    epochs: int = option(10, "Passes over each rollout in the update.")
    minibatches: int = option(4, "Minibatches per epoch.")

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_minibatching("epochs", self.epochs, "minibatches", self.minibatches)


@dataclass(frozen=True)
class CriticFitFields(_Fields):
    """The critic's separate regression (TRPO, REINFORCE with baseline = value)."""

    value_epochs: int = option(5, "Critic regression passes over each rollout (REINFORCE: with baseline = value).")
    value_minibatches: int = option(4, "Critic regression minibatches per pass.")

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_minibatching("value_epochs", self.value_epochs, "value_minibatches", self.value_minibatches)


@dataclass(frozen=True)
class LossWeights(_Fields):
    """Weights of the value loss and the entropy bonus in a joint actor-critic loss (PPO, PPO-KL, A2C/A3C)."""

    value_coef: float = option(0.5, "Weight of the value loss.")
    entropy_coef: float = option(0.0, "Weight of the entropy bonus.")


@dataclass(frozen=True)
class ScheduleFields(_Fields):
    """The learning rate's schedule over the run (PPO, PPO-KL, A2C/A3C)."""

    LR_SCHEDULES: ClassVar[tuple[LRSchedule, ...]] = (LRSchedule.CONSTANT, LRSchedule.LINEAR)
    lr_schedule: LRSchedule = option(
        LRSchedule.LINEAR, "constant, or linear (from learning_rate to 0 at total_steps: the last updates settle the "
        "policy that is deployed)."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "lr_schedule", LRSchedule(self.lr_schedule))
        allowed = [s.value for s in self.LR_SCHEDULES]
        _check(self.lr_schedule in self.LR_SCHEDULES,
               f"lr_schedule {self.lr_schedule.value} is not available here; pass --lr-schedule with one of {allowed}")


def _check_minibatching(epochs_name: str, epochs: int, minibatches_name: str, minibatches: int) -> None:
    _check(epochs >= 1, f"{epochs_name} must be >= 1, got {epochs}")
    _check(minibatches >= 1, f"{minibatches_name} must be >= 1, got {minibatches}")


@dataclass(frozen=True)
class PPOConfig(ScheduleFields, LossWeights, MinibatchFields, GAEFields, OnPolicyConfig):
    """PPO v2, the clipped surrogate (``--algo ppo``)."""

    LR_SCHEDULES: ClassVar[tuple[LRSchedule, ...]] = tuple(LRSchedule)
    lr_schedule: LRSchedule = option(
        LRSchedule.LINEAR, "constant, linear (to 0 at total_steps) or adaptive (KL-driven, see desired_kl)."
    )
    desired_kl: float = option(0.01, "Adaptive schedule: lr /1.5 when KL > 2x this, x1.5 when KL < half of it.")
    clip_range: float = option(0.2, "PPO-clip epsilon: ratio clipped to [1 - eps, 1 + eps].")
    clip_value: bool = option(False, "Clip the value update to +-clip_range around the old value.")
    target_kl: float = option(0.0, "Stop the epochs early when mean KL exceeds 1.5x this (0 disables).")

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.clip_range > 0, f"clip_range must be > 0, got {self.clip_range}")
        _check(self.target_kl >= 0, f"target_kl must be >= 0 (0 disables), got {self.target_kl}")


@dataclass(frozen=True)
class PPOKLConfig(ScheduleFields, LossWeights, MinibatchFields, GAEFields, OnPolicyConfig):
    """PPO v1: surrogate minus beta * KL, with the dual update of beta after each update (``--algo ppo-kl``)."""

    # 1e-3, not the paper's 3e-4: a rollout here is 8 x 64 samples in 4 minibatches (40 Adam steps per update,
    # the paper's 2048 x 10 epochs / 64 took 320), and at 3e-4 InvertedPendulum-v5 stayed unlearned at 30k-50k steps
    # on 2 of 5 seeds (deployed 136-137); at 1e-3 all 5 reach 1000 at 50k (docs/bench_algorithms.md).
    learning_rate: float = option(1e-3, "Adam learning rate.")
    lr_schedule: LRSchedule = option(LRSchedule.CONSTANT, "constant, or linear (from learning_rate to 0 at total_steps).")
    kl_target: float = option(0.01, "d_targ: beta doubles when the update's KL > 1.5 d_targ, halves when < d_targ/1.5.")
    init_beta: float = option(1.0, "Initial KL penalty coefficient beta.")
    beta_factor: float = option(2.0, "Factor beta is multiplied or divided by in the dual update.")

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.kl_target > 0, f"kl_target must be > 0, got {self.kl_target}")
        _check(self.init_beta > 0, f"init_beta must be > 0, got {self.init_beta}")
        _check(self.beta_factor > 1, f"beta_factor must be > 1, got {self.beta_factor}")


@dataclass(frozen=True)
class TRPOConfig(CriticFitFields, GAEFields, OnPolicyConfig):
    """TRPO: natural-gradient step inside a KL trust region; the critic is fitted separately (``--algo trpo``)."""

    rollout_steps: int = option(128, "Steps per environment per rollout (T); a rollout has T * num_envs samples.")
    learning_rate: float = option(1e-3, "Adam learning rate of the critic (the actor's step is set by max_kl).")
    # A closer critic fit than REINFORCE's 5 x 4, near sb3-contrib's 15 passes in minibatches of 128 (the zoo's
    # Pendulum entry): on Pendulum-v1 (200k steps, seeds 0-2) 5 x 4 deployed -132 -268 -146, 15 x 8 -127 -129 -112
    # (docs/bench_algorithms.md).
    value_epochs: int = option(15, "Critic regression passes over each rollout.")
    value_minibatches: int = option(8, "Critic regression minibatches per pass.")
    max_kl: float = option(0.01, "delta: the trust region, mean KL(pi_old || pi) <= delta.")
    cg_iters: int = option(10, "Conjugate-gradient iterations for F^-1 g.")
    cg_damping: float = option(0.1, "Damping added to the Fisher-vector product (F + damping I) v.")
    line_search_steps: int = option(10, "Backtracking line-search attempts before the step is rejected.")
    backtrack_ratio: float = option(0.8, "Each line-search attempt shrinks the step by this factor.")

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.max_kl > 0, f"max_kl must be > 0, got {self.max_kl}")
        _check(self.cg_iters >= 1, f"cg_iters must be >= 1, got {self.cg_iters}")
        _check(self.cg_damping >= 0, f"cg_damping must be >= 0, got {self.cg_damping}")
        _check(self.line_search_steps >= 1, f"line_search_steps must be >= 1, got {self.line_search_steps}")
        _check(0 < self.backtrack_ratio < 1, f"backtrack_ratio must be in (0, 1), got {self.backtrack_ratio}")


@dataclass(frozen=True)
class A2CConfig(ScheduleFields, LossWeights, GAEFields, OnPolicyConfig):
    """Advantage actor-critic, one gradient step per rollout, synchronous over vectorised envs (``--algo a2c``)."""

    # Adam at a constant rate: on InvertedPendulum-v5 (60k steps, 5 seeds) neither Stable-Baselines3's settings
    # (RMSprop 7e-4, 5 steps, no advantage normalisation) nor a linear decay did better (docs/bench_algorithms.md).
    # A narrower initial policy does: std exp(-1) = 0.37 of the action half-range, near Stable-Baselines3's std of 1
    # on InvertedPendulum's [-3, 3] (robopg's -0.5 is 1.8 there); one gradient step per rollout cannot undo the drift
    # the wider noise starts. At 100k steps, seeds 0-9: 6 of 10 at 1000 against 3 of 10 (docs/bench_algorithms.md).
    INIT_LOG_STD: ClassVar[float] = -1.0
    optimizer: OptimizerKind = option(OptimizerKind.ADAM, "adam or rmsprop (alpha 0.99, eps 1e-5).")
    lr_schedule: LRSchedule = option(LRSchedule.CONSTANT, "constant, or linear (from learning_rate to 0 at total_steps).")
    rollout_steps: int = option(8, "Steps per environment per rollout (T): the n of n-step returns.")
    advantage: AdvantageEstimator = option(
        AdvantageEstimator.NSTEP, "td (r + gamma V(x') - V(x)), nstep (bootstrapped at the rollout end) or gae."
    )
    critic_target: CriticTarget = option(CriticTarget.MC, "Critic regression target: mc (returns) or td.")
    normalize_rewards: bool = option(
        False, "Divide the rewards the update sees by the running std of the discounted return (SB3 VecNormalize's "
        "reward part; robopg/modules/normalizer.py ReturnScaler); the logged returns stay raw. a2c only."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "optimizer", OptimizerKind(self.optimizer))
        object.__setattr__(self, "advantage", AdvantageEstimator(self.advantage))
        object.__setattr__(self, "critic_target", CriticTarget(self.critic_target))


@dataclass(frozen=True)
class A3CConfig(A2CConfig):
    """Asynchronous A2C: worker processes apply their gradients to shared parameters without a lock
    (Hogwild, as in Mnih et al. 2016) (``--algo a3c``)."""

    # Half of A2C's rate: the 2 workers take twice A2C's updates at the same env steps, each on half the samples
    # (its envs split among them), so Adam's step per update at 1e-3 doubled the step per sample. On
    # FetchReachDense-v4 (50k steps, 16 envs) 1e-3 deployed 0.1 / 0.6 success on seeds 0 / 1, 5e-4 1.0 / 1.0
    # (docs/bench_algorithms.md).
    learning_rate: float = option(5e-4, "Adam learning rate (half of a2c's: twice the updates, half the samples each).")
    workers: int = option(2, "Worker processes; env.num_envs is split evenly among them.")

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.workers >= 1, f"workers must be >= 1, got {self.workers}")
        _check(not self.normalize_rewards, "normalize_rewards is built for a2c (one running return per env, checkpointed "
               "with the algorithm); a3c's workers do not have it: drop --normalize-rewards or pass --algo a2c")


@dataclass(frozen=True)
class ReinforceConfig(CriticFitFields, OnPolicyConfig):
    """Monte-Carlo policy gradient (``--algo reinforce``). Only episodes that end inside a rollout are used,
    so rollout_steps should span a few episodes."""

    rollout_steps: int = option(
        100, "Steps per environment per rollout; episodes cut at its end are dropped, so make it >= 2 episodes."
    )
    gamma: float = option(0.99, "Discount factor.")
    learning_rate: float = option(3e-3, "Adam learning rate (policy, and critic for baseline = value).")
    returns: ReturnType = option(ReturnType.REWARD_TO_GO, "full (r(tau) for every step) or reward_to_go.")
    baseline: Baseline = option(Baseline.VALUE, "none, average (mean batch return) or value (learned V(x_t)).")
    # The narrower initial policy of A2C (see there): InvertedPendulum-v5 at 200k steps, seeds 0-2, deployed 1000 1000
    # 1000 against 1000 530 731 at -0.5 (docs/bench_algorithms.md).
    INIT_LOG_STD: ClassVar[float] = -1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "returns", ReturnType(self.returns))
        object.__setattr__(self, "baseline", Baseline(self.baseline))


@dataclass(frozen=True)
class RunConfig:
    algo: Algo = option(
        Algo.PPO, "Algorithm; its options live in the config section of the same name ([ppo], [ppo_kl], ...)."
    )
    total_steps: int = option(50_000, "Environment steps to train for (summed over environments and ranks).")
    seed: int = option(0, "Seed for environments, network initialisation and sampling.")
    checkpoint_every: int = option(10, "Write a periodic checkpoint every this many iterations (0: final only).")
    torch_threads: int = option(1, "torch intra-op threads (the environments use the other cores).")
    update_threads: int = option(
        0, "torch intra-op threads during the update, while the environments wait for it (0: torch_threads); on a "
        "machine to itself, its core count (docs/batched_engine.md). Synchronous runner; per rank under torchrun."
    )
    device: Device = option(Device.CPU, "Where the policy and its update run: cpu, or cuda (the environments stay "
                            "on the CPU; under torchrun each rank takes the GPU of its local rank).")
    dist_timeout: float = option(300.0, "Under torchrun: seconds a rank waits in a collective for the others before "
                                 "it stops the run, naming the rank that did not answer.")
    preset: str = option("", "Start from this shipped recipe (robopg presets lists them); --config and flags override it.")
    logger: tuple[Tracker, ...] = option(
        (Tracker.TENSORBOARD,), "Run trackers besides metrics.csv, one or more of tensorboard, wandb, mlflow "
        "(wandb and mlflow need the robopg[wandb] / robopg[mlflow] extras).")
    project: str = option("robopg", "W&B project and MLflow experiment the run is recorded in.")
    wandb_mode: WandbMode = option(WandbMode.OFFLINE, "W&B mode: offline (files under RUN_DIR/wandb, upload later "
                                   "with `wandb sync`) or online.")
    mlflow_tracking_uri: str = option("", "MLflow tracking URI; empty: $MLFLOW_TRACKING_URI if set, else a SQLite "
                                      "store RUN_DIR/mlflow.db.")

    def __post_init__(self) -> None:
        object.__setattr__(self, "algo", Algo(self.algo))
        known = [t.value for t in Tracker]
        unknown = [str(t) for t in self.logger if str(t) not in known]
        _check(not unknown, f"unknown logger(s) {unknown}; pass --logger with one or more of {known}")
        object.__setattr__(self, "logger", tuple(dict.fromkeys(Tracker(t) for t in self.logger)))
        object.__setattr__(self, "wandb_mode", WandbMode(self.wandb_mode))
        _check(bool(self.project.strip()), "project must not be empty; pass --project robopg, say")
        _check(self.total_steps >= 1, f"total_steps must be >= 1, got {self.total_steps}")
        _check(self.checkpoint_every >= 0, f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        _check(self.torch_threads >= 1, f"torch_threads must be >= 1, got {self.torch_threads}")
        _check(self.update_threads >= 0, f"update_threads must be >= 0 (0: torch_threads), got {self.update_threads}")
        object.__setattr__(self, "device", Device(self.device))
        _check(self.dist_timeout > 0, f"dist_timeout must be > 0 seconds, got {self.dist_timeout}; pass --dist-timeout 300")


ALGO_SECTIONS: dict[Algo, type[OnPolicyConfig]] = {
    Algo.PPO: PPOConfig,
    Algo.PPO_KL: PPOKLConfig,
    Algo.TRPO: TRPOConfig,
    Algo.A2C: A2CConfig,
    Algo.A3C: A3CConfig,
    Algo.REINFORCE: ReinforceConfig,
}
SECTIONS: dict[str, type] = {
    "env": EnvConfig,
    "policy": PolicyConfig,
    "run": RunConfig,
    "adr": AdrConfig,
    "curriculum": CurriculumConfig,
    **{algo.section: section_cls for algo, section_cls in ALGO_SECTIONS.items()},
}


@dataclass(frozen=True)
class TrainConfig:
    """Every section; ``run.algo`` picks which algorithm section is used (``cfg.algorithm``)."""

    env: EnvConfig = field(default_factory=EnvConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    run: RunConfig = field(default_factory=RunConfig)
    adr: AdrConfig = field(default_factory=AdrConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    ppo_kl: PPOKLConfig = field(default_factory=PPOKLConfig)
    trpo: TRPOConfig = field(default_factory=TRPOConfig)
    a2c: A2CConfig = field(default_factory=A2CConfig)
    a3c: A3CConfig = field(default_factory=A3CConfig)
    reinforce: ReinforceConfig = field(default_factory=ReinforceConfig)

    def __post_init__(self) -> None:
        _check(
            not (self.policy.shared_trunk and self.run.algo is Algo.TRPO),
            "trpo constrains the actor alone and fits the critic separately, so it needs two networks; "
            "drop --shared-trunk (or pass --no-shared-trunk)",
        )
        _check(
            not (self.adr.enabled and self.env.randomization == "none"),
            "ADR widens the ranges of a randomisation spec; pass --randomization default (or a TOML spec) with --adr",
        )
        _check(
            not (self.curriculum.enabled and self.env.randomization == "none"),
            "the curriculum widens the ranges of a randomisation spec; pass --randomization default (or a TOML "
            "spec) with --curriculum",
        )
        _check(not self.policy.critic_action_history or self.env.action_history > 0,
               "critic_action_history shows the critic the actor's action history, and action_history is 0; pass "
               "--action-history 3 (say) or drop --critic-action-history")
        _check(not (self.policy.latency_aligned_advantages and self.run.algo is Algo.REINFORCE),
               "latency_aligned_advantages moves GAE advantages, and reinforce uses Monte-Carlo returns; use --algo "
               "ppo (or a2c, a3c, ppo-kl, trpo), or drop --latency-aligned-advantages")
        _check(not (self.curriculum.enabled and self.adr.enabled),
               "--curriculum and --adr both set the randomisation ranges; choose one")
        _check(
            not ((self.adr.enabled or self.curriculum.enabled or self.env.air_goal_ramp_steps)
                 and self.run.algo is Algo.A3C),
            "ADR, the curriculum and the in-air goal ramp run in the synchronous trainer; use --algo ppo (or another "
            "synchronous algorithm)",
        )
        if isinstance(self.algorithm, MinibatchFields):  # checked here, not at the first update: before the run dir
            section = self.run.algo.section
            _check(
                self.algorithm.minibatches <= self.batch_size,
                f"[{section}] minibatches = {self.algorithm.minibatches} is more than the {self.batch_size} samples of "
                f"a rollout (rollout_steps {self.algorithm.rollout_steps} x num_envs {self.env.num_envs}); pass "
                f"--minibatches {min(4, self.batch_size)}, say, or collect more (--rollout-steps, --num-envs)",
            )
        _check(not (self.run.algo is Algo.A3C and self.run.device is Device.CUDA),
               "a3c's workers update parameters in shared CPU memory; use --device cpu with --algo a3c")
        if self.run.algo is Algo.A3C:
            workers = self.a3c.workers
            _check(
                self.env.num_envs % workers == 0,
                f"a3c splits num_envs={self.env.num_envs} among workers={workers}; "
                f"pass a num_envs that is a multiple of {workers}",
            )
        if self.policy.recurrent is not Recurrent.NONE:
            self._check_sequence_minibatches()
        _check(not self.policy.sde or self.run.algo in (Algo.A2C, Algo.A3C, Algo.REINFORCE),
               f"--sde is built for a2c, a3c and reinforce: {self.run.algo.value} measures a KL against the rollout "
               "policy's state-independent std, which state-dependent noise does not have; drop --sde or pass "
               "--algo a2c")

    def _check_sequence_minibatches(self) -> None:
        """A recurrent policy trains on whole env sequences, so a minibatch holds at least one environment."""
        algo = self.algorithm
        if isinstance(algo, MinibatchFields):
            _check(algo.minibatches <= self.env.num_envs,
                   f"a recurrent policy's minibatches are whole env sequences: {algo.minibatches} minibatches from "
                   f"{self.env.num_envs} envs. Fix: pass --minibatches {self.env.num_envs} or less (or more --num-envs)")

    @property
    def algorithm(self) -> OnPolicyConfig:
        """The section of the selected algorithm (``run.algo``)."""
        return getattr(self, self.run.algo.section)

    @property
    def init_log_std(self) -> float:
        """The policy's initial log std: [policy] init_log_std, else the selected algorithm's default."""
        own = self.policy.init_log_std
        return self.algorithm.INIT_LOG_STD if own is None else own

    @property
    def batch_size(self) -> int:
        """Samples per rollout over all environments: rollout_steps * num_envs."""
        return self.algorithm.rollout_steps * self.env.num_envs

    @property
    def iterations(self) -> int:
        """Rollout/update iterations needed to reach total_steps (the last one may overshoot)."""
        return -(-self.run.total_steps // self.batch_size)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """env, policy, run, adr, curriculum and the selected algorithm's section (the others are unused by this run)."""
        names = ("env", "policy", "run", "adr", "curriculum", self.run.algo.section)
        return json.loads(json.dumps({name: asdict(getattr(self, name)) for name in names}))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        """Sections missing from ``data`` keep their defaults; unknown sections and fields are errors."""
        unknown = set(data) - set(SECTIONS)
        if unknown:
            raise ValueError(f"{source}: unknown section(s) {sorted(unknown)}; known: {sorted(SECTIONS)}")
        parts = {}
        for name, section_cls in SECTIONS.items():
            values = _check_fields(section_cls, name, data.get(name, {}), source)
            parts[name] = section_cls(**values)
        return cls(**parts)

    def replace(self, overrides: dict[str, dict[str, Any]], source: str = "overrides") -> TrainConfig:
        """A copy with ``{section: {field: value}}`` applied (flags over a config file)."""
        unknown = set(overrides) - set(SECTIONS)
        if unknown:
            raise ValueError(f"{source}: unknown section(s) {sorted(unknown)}; known: {sorted(SECTIONS)}")
        parts = {name: getattr(self, name) for name in SECTIONS}
        for name, values in overrides.items():
            parts[name] = dataclasses.replace(parts[name], **_check_fields(SECTIONS[name], name, values, source))
        return TrainConfig(**parts)


def _check_fields(section_cls: type, name: str, values: dict[str, Any], source: str) -> dict[str, Any]:
    """The values of section ``name``, each checked against its field's type (robopg/field_types.py)."""
    values = checked_values(section_cls, name, values, source)
    known = {f.name for f in fields(section_cls)}
    typos = set(values) - known
    if typos:
        raise ValueError(f"{source}: unknown field(s) {sorted(typos)} in [{name}]; known: {sorted(known)}")
    return values


def load_config(path: str | Path) -> TrainConfig:
    """Read a TOML or JSON config file with sections [env], [policy], [run] and algorithm sections ([ppo], ...)."""
    return TrainConfig.from_dict(config_sections(path), source=str(path))


def resolve_config(preset: str | None, config_file: str | Path | None,
                   flags: dict[str, dict[str, Any]]) -> TrainConfig:
    """defaults < preset < config file < flags. The preset comes from the flags, else the config file's run.preset."""
    file_sections = config_sections(config_file) if config_file else {}
    name = preset or file_sections.get("run", {}).get("preset") or ""
    cfg = TrainConfig.from_dict(preset_sections(name), source=f"preset {name}") if name else TrainConfig()
    for source, sections in ((str(config_file), file_sections), ("flags", flags)):
        if sections:
            cfg = cfg.replace(sections, source=source)
    return cfg


def config_sections(path: str | Path) -> dict[str, dict[str, Any]]:
    """The {section: {field: value}} tables of a TOML or JSON config file, unvalidated."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist; check the --config path")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"config file {path} is not valid {path.suffix.lstrip('.') or 'TOML'}: {err}") from err
    return data


def field_help(section_cls: type) -> list[tuple[str, Any, str, Any]]:
    """(name, type annotation, help, default) for each field of a section, for the CLI."""
    out = []
    for f in fields(section_cls):
        default = f.default if f.default is not MISSING else None
        out.append((f.name, f.type, f.metadata.get("help", ""), default))
    return out
