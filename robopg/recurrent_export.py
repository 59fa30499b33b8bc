"""Export of a recurrent policy (robopg/export.py calls these): the graph with its state as explicit inputs and
outputs, and the parity gate on recorded sequences that cross episode boundaries.

    obs [batch, input_dim], h_in [layers, batch, hidden] (, c_in)  ->  action [batch, act_dim], h_out (, c_out)

The graph is the actor's step: normaliser -> LSTM/GRU one step -> MLP head mean (+ ``action_probe``) -> clip -> the
bounds, returning the next state. Resets are the caller's, by the rule the metadata states ("zeros at an episode's
start"); the robot's ``Controller`` follows it. Why parity on sequences: a state that is fed back wrongly, or reset
at the wrong time, only shows over many steps and across episode ends, never on single observations.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from policies_export import Controller
from policies_export.metadata import Recurrence
from policies_export.runtime import ACTION_PROBE
from policies_export.safety import SafetyConfig
from robopg import seeds
from robopg.config import EnvConfig
from robopg.environment import make_training_env
from robopg.modules.recurrent import RecurrentActorCritic, State

SEQUENCE_STEPS = 512
"""Least steps per recorded env sequence for the parity gate."""
SEQUENCE_BOUNDARIES = 3
"""Least episode boundaries inside each recorded env sequence (recording runs on until every env has them)."""
MAX_SEQUENCE_STEPS = 20_000


class DeployedRecurrentPolicy(nn.Module):
    """What runs on the robot: (obs (B, input_dim), the actor's state) -> (action in bounds (B, act_dim), next
    state); the state tensors are (layers, B, hidden) each, h then c for an LSTM."""

    def __init__(self, policy: RecurrentActorCritic) -> None:
        super().__init__()
        self.policy = policy
        # Zeros: no effect on the actions. Made overridable in the file (export.add_probe_input) for the runtime.
        self.register_buffer(ACTION_PROBE, torch.zeros(policy.act_dim))

    def forward(self, obs: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        mean, next_state = self.policy.mean_step(obs, state)
        return (self.policy.to_env_action(mean + getattr(self, ACTION_PROBE)), *next_state)


def recurrence_of(policy: RecurrentActorCritic) -> Recurrence:
    """The metadata's description of the actor's state."""
    memory = policy.actor.memory
    return Recurrence.standard(memory.kind.value, memory.layers, memory.hidden_size)


def recurrent_onnx_bytes(policy: RecurrentActorCritic, opset: int) -> bytes:
    """The actor's step as ONNX with the state inputs/outputs ``recurrence_of(policy)`` names, dynamic batch."""
    rec = recurrence_of(policy)
    zeros = tuple(policy.actor.memory.zero_state(1))
    dynamic = {"obs": {0: "batch"}, "action": {0: "batch"}, **{name: {1: "batch"} for name in rec.inputs + rec.outputs}}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice (see export.to_onnx_bytes)
        torch.onnx.export(
            DeployedRecurrentPolicy(policy).eval(), (torch.zeros(1, policy.obs_dim), *zeros), buffer,
            input_names=["obs", *rec.inputs], output_names=["action", *rec.outputs], dynamic_axes=dynamic,
            opset_version=opset, dynamo=False,
        )
    return buffer.getvalue()


@dataclass(frozen=True)
class RecordedSequences:
    """Policy inputs of ``envs`` training envs over ``steps`` steps, and where episodes start."""

    inputs: np.ndarray  # (T, N, input_dim) float32, as the policy's input (with any history stacked)
    starts: np.ndarray  # (T, N) bool: step t is an episode's first (the state is zeros before it)

    @property
    def steps(self) -> int:
        return self.inputs.shape[0]

    @property
    def samples(self) -> int:
        """Policy inputs in all: T * N."""
        return self.starts.size

    @property
    def boundaries(self) -> int:
        """Episode boundaries inside the sequence of the env with the fewest."""
        return int(self.starts[1:].sum(axis=0).min())

    def describe(self) -> str:
        return (f"a recorded sequence of {self.steps} steps x {self.inputs.shape[1]} envs spanning at least "
                f"{self.boundaries} episode boundaries each")


@torch.no_grad()
def record_sequences(policy: RecurrentActorCritic, env_cfg: EnvConfig, seed: int, num_envs: int = 4,
                     min_steps: int = SEQUENCE_STEPS, min_boundaries: int = SEQUENCE_BOUNDARIES) -> RecordedSequences:
    """Run the policy (stochastic actions, for coverage; its state zeroed at every episode start, as in training) in
    its training env until each env's sequence has ``min_steps`` steps and ``min_boundaries`` episode boundaries."""
    generator = seeds.generator(seed)
    env = make_training_env(env_cfg, num_envs, seed=seed)
    inputs, starts = [], []
    try:
        obs, _ = env.reset(seed=seed)
        state: State = policy.actor.memory.zero_state(num_envs)
        start = np.ones(num_envs, dtype=bool)
        boundaries = np.full(num_envs, -1)  # recorded episode starts per env, the reset at step 0 not counted
        while len(inputs) < min_steps or boundaries.min() < min_boundaries:
            if len(inputs) >= MAX_SEQUENCE_STEPS:
                raise ValueError(f"{env_cfg.task}: fewer than {min_boundaries} episode ends in {MAX_SEQUENCE_STEPS} "
                                 "steps per env; the recurrent parity gate needs sequences across episode boundaries")
            inputs.append(obs.astype(np.float32))
            starts.append(start)
            boundaries += start
            actions, state = policy.sample_step(torch.from_numpy(inputs[-1]), state, generator)
            obs, _, terminated, truncated, _ = env.step(policy.to_env_action(actions).numpy())
            start = terminated | truncated
            state = tuple(s * torch.from_numpy(~start).to(s.dtype).view(1, -1, 1) for s in state)
    finally:
        env.close()
    return RecordedSequences(np.stack(inputs), np.stack(starts))


def sequence_max_abs_diff(path: object, policy: RecurrentActorCritic, recorded: RecordedSequences) -> float:
    """Largest |torch - onnxruntime| over the recorded sequences, both stepping the state tick by tick with zeros
    at every episode start; onnxruntime through the robot's Controller (``act_batch_with_state``)."""
    controller = Controller.load(path, safety=SafetyConfig(check_obs_range=False))  # parity measures the graph
    n = recorded.inputs.shape[1]
    state_torch: State = policy.actor.memory.zero_state(n)
    state_onnx = controller.initial_state(n)
    worst = 0.0
    for obs, start in zip(recorded.inputs, recorded.starts, strict=True):
        keep = torch.from_numpy(~start).float().view(1, -1, 1)
        state_torch = tuple(s * keep for s in state_torch)
        state_onnx = tuple(s * keep.numpy() for s in state_onnx)
        expected, state_torch = policy.deterministic_step(torch.from_numpy(obs), state_torch)
        got, state_onnx = controller.act_batch_with_state(obs, state_onnx)
        worst = max(worst, float(np.max(np.abs(got.astype(np.float64) - expected.numpy().astype(np.float64)))))
    return worst
