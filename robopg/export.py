"""Export a trained run to one self-describing ONNX file, and refuse to write one that disagrees with torch.

The graph maps raw observations to robot actions: normaliser -> actor MLP mean (+ ``action_probe``, zeros) -> clip
to [-1, 1] -> affine map onto the action bounds; a recurrent policy's also takes and returns its state
(robopg/recurrent_export.py), and its parity is measured on recorded sequences across episode boundaries. Its ``metadata_props["robopg"]`` is the JSON of
``policies_export.PolicyMetadata``, with the file's sha256 digest (policies_export/integrity.py). The probe is an
overridable initializer: ``Controller.load`` feeds it +-1e20 to run the clip and compare the graph's action range
with the metadata's bounds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

import envs
import robopg
from policies_export import FORMAT_VERSION, METADATA_KEY, Controller, PolicyMetadata, integrity
from policies_export.metadata import DEFAULT_OBSERVATION_TOLERANCE, History
from policies_export.runtime import ACTION_PROBE
from policies_export.safety import SafetyConfig
from robopg import seeds
from robopg.checkpoint import (
    FINAL,
    LATEST,
    STEP_GLOB,
    CheckpointError,
    RunCheckpoint,
    atomic_write_bytes,
    load_checkpoint,
    load_run_checkpoint,
)
from robopg.config import EnvConfig, TrainConfig
from robopg.environment import make_training_env
from robopg.facts import TaskFacts, active_parameters
from robopg.modules import GaussianActorCritic, RecurrentActorCritic, build_policy
from robopg.recurrent_export import (
    record_sequences,
    recurrence_of,
    recurrent_onnx_bytes,
    sequence_max_abs_diff,
)

PARITY_TOLERANCE = 1e-5
OPSET = 17


class ExportError(RuntimeError):
    """Export refused to write a file (parity above tolerance); an unusable checkpoint raises CheckpointError."""


class DeployedPolicy(nn.Module):
    """What runs on the robot: raw policy input (B, input_dim) -> deterministic action in bounds (B, act_dim).
    input_dim is obs_dim, or with history K * obs_dim + M * act_dim (envs/history.py; the runtime stacks)."""

    def __init__(self, policy: GaussianActorCritic) -> None:
        super().__init__()
        self.policy = policy
        # Zeros: no effect on the actions. Made overridable in the file (add_probe_input) for the runtime's check.
        self.register_buffer(ACTION_PROBE, torch.zeros(policy.act_dim))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.policy.to_env_action(self.policy.mean(obs) + getattr(self, ACTION_PROBE))


@dataclass(frozen=True)
class ExportReport:
    path: Path
    parity_max_abs_diff: float
    num_observations: int
    metadata: PolicyMetadata
    parity_on: str
    """What the parity was measured on, e.g. "1024 recorded observations" or, for a recurrent policy, "a recorded
    sequence of 512 steps x 4 envs spanning at least 10 episode boundaries each"."""


def find_checkpoint(run_dir: Path) -> RunCheckpoint:
    """final.pt if training finished, else latest.pt, else the newest intact periodic checkpoint (robopg/checkpoint.py
    says which are passed over and why); a .pt path is taken as is. Raises CheckpointError (a ValueError)."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        return RunCheckpoint(run_dir, load_checkpoint(run_dir))
    return load_run_checkpoint(run_dir, (FINAL, LATEST))


# Policy state entries that are statistics or constants, not trained weights: averaging takes the newest's.
_NOT_AVERAGED = ("normalizer.", "critic_normalizer.", "action_low", "action_high")


def _periodic_steps(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of the run's checkpoints/step_*.pt, oldest first (the step is in the zero-padded name)."""
    found = []
    for path in sorted(run_dir.glob(STEP_GLOB)):
        try:
            found.append((int(path.stem.removeprefix("step_")), path))
        except ValueError:
            continue
    return found


def average_checkpoints(newest: RunCheckpoint, count: int) -> tuple[dict, tuple[int, ...]]:
    """The newest checkpoint's state with its trained weights (actor, critic, log std) replaced by their mean over
    it and the ``count - 1`` newest periodic checkpoints before it; normaliser statistics and action bounds stay
    the newest's. Returns the state and the averaged steps, oldest first.

    Why: a PPO run whose updates leave the trust region every iteration deploys a snapshot of a mean that moves
    by ~half an action std per update; the mean of its last checkpoints is a steadier policy (docs/sim2real.md,
    section 8, measured on the push runs)."""
    state = newest.state
    step = int(state["global_step"])
    # The run the checkpoint belongs to: RUN/final.pt, RUN/latest.pt or RUN/checkpoints/step_N.pt.
    folder = newest.path.parent
    run_dir = folder.parent if folder.name == "checkpoints" else folder
    older = [(s, path) for s, path in _periodic_steps(run_dir) if s < step][-(count - 1):]
    if len(older) < count - 1:
        raise CheckpointError(
            f"--average-last {count} needs {count - 1} periodic checkpoints before step {step} in "
            f"{run_dir / 'checkpoints'}, found {len(older)}; pass a smaller --average-last, or train with a smaller "
            "--checkpoint-every"
        )
    states = [load_checkpoint(path)["policy"] for _, path in older] + [state["policy"]]
    averaged = dict(state["policy"])
    for key, value in state["policy"].items():
        if key.startswith(_NOT_AVERAGED) or not torch.is_tensor(value) or not value.is_floating_point():
            continue
        shapes = {tuple(s[key].shape) if key in s else None for s in states}
        if len(shapes) != 1:
            raise CheckpointError(
                f"the checkpoints to average differ in {key!r} ({sorted(map(str, shapes))}): they are not one run's; "
                "export without --average-last"
            )
        averaged[key] = torch.stack([s[key] for s in states]).mean(dim=0)
    return {**state, "policy": averaged}, tuple(s for s, _ in older) + (step,)


def load_trained_policy(run_dir: Path, average_last: int = 1) -> tuple[GaussianActorCritic, dict]:
    """The policy of a run (eval mode) and its checkpoint state; with ``average_last`` > 1 the weights are the mean
    of the run's last checkpoints (``average_checkpoints``) and the state carries ``"averaged_steps"``."""
    newest = find_checkpoint(run_dir)
    state = newest.state
    if average_last > 1:
        state, steps = average_checkpoints(newest, average_last)
        state["averaged_steps"] = steps
    cfg = TrainConfig.from_dict(state["config"], source=f"{run_dir} checkpoint")
    policy = build_policy(cfg, TaskFacts.from_dict(state["task"], source=f"{run_dir} checkpoint"))
    policy.load_state_dict(state["policy"])
    policy.eval()
    return policy, state


@torch.no_grad()
def record_observations(policy: GaussianActorCritic, env_cfg: EnvConfig, num: int, seed: int) -> np.ndarray:
    """Observations the policy meets in its training env (stochastic actions, for coverage): (>= num, input_dim)
    float32, as the policy's input (with any history the run stacks: robopg/environment.py wraps it)."""
    num_envs = 8
    generator = seeds.generator(seed)
    env = make_training_env(env_cfg, num_envs, seed=seed)
    try:
        obs, _ = env.reset(seed=seed)
        recorded = [obs]
        for _ in range(-(-num // num_envs) - 1):
            actions = policy.sample_actions(torch.from_numpy(obs), generator)
            obs, *_ = env.step(policy.to_env_action(actions).numpy())
            recorded.append(obs)
    finally:
        env.close()
    return np.concatenate(recorded).astype(np.float32)


def observation_range(
    policy: GaussianActorCritic, obs_dim: int, history: History
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The range the runtime's safety layer checks observations against: (low, high), each obs_dim floats.

    Why the normaliser's mean -+ clip * std and not the min/max of the observations recorded for the parity
    check: the normaliser has seen every observation of training (all envs, all steps), the recorded ones are
    ~1k steps of one seed; on FetchReachDense-v4 30% of nominal evaluation ticks fall outside the recorded
    min/max (new goal positions), none outside mean -+ 10 std. And the bound means something for the network:
    beyond it the normaliser clips its input, so the policy cannot see how far out the value is.
    None for a policy whose normaliser never saw data (its statistics say nothing about the task).
    With history the normaliser covers K stacked observations and M actions; the robot's range check is on the
    one raw observation it sends, so the range is that of the newest frame (obs_dim values ending at K * obs_dim).
    """
    if float(policy.normalizer.count) == 0:
        return None
    low, high = policy.normalizer.unclipped_range()
    newest = slice((history.observations - 1) * obs_dim, history.observations * obs_dim)
    return tuple(low[newest].tolist()), tuple(high[newest].tolist())


def to_onnx_bytes(policy: GaussianActorCritic) -> bytes:
    """The deployed graph; a recurrent policy's takes and returns its state (robopg/recurrent_export.py)."""
    if isinstance(policy, RecurrentActorCritic):
        return recurrent_onnx_bytes(policy, OPSET)
    module = DeployedPolicy(policy).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter (dynamo=False) is deprecated in favour of torch.export, which needs onnxscript
        # and is slower; for an MLP both give the same graph, and the parity check below guards the result.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (torch.zeros(1, policy.obs_dim),), buffer, input_names=["obs"], output_names=["action"],
            dynamic_axes={"obs": {0: "batch"}, "action": {0: "batch"}}, opset_version=OPSET, dynamo=False,
        )
    return buffer.getvalue()


def add_probe_input(model: onnx.ModelProto) -> None:
    """List the ``action_probe`` initializer among the graph's inputs too, which makes it overridable at run time
    (ONNX IR >= 4: an initializer that is also an input is a default value, not a constant)."""
    [probe] = [init for init in model.graph.initializer if init.name == ACTION_PROBE]
    model.graph.input.append(onnx.helper.make_tensor_value_info(ACTION_PROBE, probe.data_type, list(probe.dims)))


def max_abs_diff(path: Path, policy: GaussianActorCritic, observations: np.ndarray) -> float:
    """Largest |torch - onnxruntime| over the observations, through the robot's own Controller."""
    with torch.no_grad():
        expected = policy.deterministic_action(torch.from_numpy(observations)).numpy()
    # Parity measures the graph, so the range check (which would swap in the neutral action) is off here.
    got = Controller.load(path, safety=SafetyConfig(check_obs_range=False)).act_batch(observations)
    return float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64))))


def policy_metadata(policy: GaussianActorCritic, state: dict, obs_tolerance: float) -> PolicyMetadata:
    """The metadata of the file exported from checkpoint ``state``: parity 0 (measured later), digest placeholder."""
    cfg = TrainConfig.from_dict(state["config"])
    facts = TaskFacts.from_dict(state["task"])
    history = History(observations=cfg.env.obs_history, actions=cfg.env.action_history)
    obs_range = observation_range(policy, facts.obs_dim, history)
    return PolicyMetadata(
        format_version=FORMAT_VERSION,
        task=facts.task,
        algorithm=state["algorithm"],
        observation_layout=facts.layout,
        action_low=facts.action_low,
        action_high=facts.action_high,
        control_rate_hz=facts.control_rate_hz,
        training_steps=int(state["global_step"]),
        seed=cfg.run.seed,
        randomization=envs.load_spec(cfg.env.randomization).to_dict(),
        randomization_active=tuple(active_parameters(cfg.env)),
        preset=cfg.run.preset or None,
        robopg_version=robopg.__version__,
        parity_max_abs_diff=0.0,
        exported_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        observation_low=obs_range[0] if obs_range else None,
        observation_high=obs_range[1] if obs_range else None,
        observation_tolerance=obs_tolerance if obs_range else None,
        history=history,
        recurrence=recurrence_of(policy) if isinstance(policy, RecurrentActorCritic) else None,
        averaged_steps=state.get("averaged_steps"),
        sha256=integrity.PLACEHOLDER,
    )


def write_policy_file(model: onnx.ModelProto, path: Path, metadata: PolicyMetadata) -> PolicyMetadata:
    """Write ``model`` with ``metadata`` atomically, stamped with the file's digest (policies_export/integrity.py);
    returns the metadata as written (with the digest)."""
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, metadata.to_json()
    onnx.checker.check_model(model, full_check=True)
    data, digest = integrity.stamp(model.SerializeToString())
    atomic_write_bytes(path, lambda f: f.write(data))
    return dataclasses.replace(metadata, sha256=digest)


def export_policy(
    run_dir: str | Path,
    out: str | Path,
    num_observations: int = 1024,
    tolerance: float = PARITY_TOLERANCE,
    obs_tolerance: float = DEFAULT_OBSERVATION_TOLERANCE,
    average_last: int = 1,
) -> ExportReport:
    """Write ``out`` (atomically) from the run's checkpoint; raise ExportError if parity exceeds tolerance.

    obs_tolerance: the file's ``observation_tolerance``, how far beyond its training range the robot's safety
    layer accepts an observation value (policies_export/safety.py); set it above your sensors' noise and bias.
    average_last: > 1 exports the mean of the weights of the run's last checkpoints (``average_checkpoints``)."""
    run_dir, out = Path(run_dir), Path(out)
    if average_last < 1:
        raise ValueError(f"average_last must be >= 1 (1: the newest checkpoint alone), got {average_last}")
    policy, state = load_trained_policy(run_dir, average_last)
    cfg = TrainConfig.from_dict(state["config"])
    gate = parity_gate(policy, cfg, num_observations)
    model = onnx.load_from_string(to_onnx_bytes(policy))
    add_probe_input(model)
    metadata = policy_metadata(policy, state, obs_tolerance)

    # Measure through a probe file loaded by the robot's own Controller, then write the real file with the
    # figure in it. The graph does not change with the metadata; measuring the written file again checks that.
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.onnx"
        write_policy_file(model, probe, metadata)
        parity = gate.measure(probe)
    if not parity <= tolerance:
        raise ExportError(
            f"onnxruntime output differs from torch by {parity:.3g} (> {tolerance:g}) on {gate.description}; "
            "no file written. Check for unsupported ops or extreme normaliser statistics."
        )
    metadata = write_policy_file(model, out, dataclasses.replace(metadata, parity_max_abs_diff=parity))
    recheck = gate.measure(out)
    if recheck != parity:
        out.unlink(missing_ok=True)
        raise ExportError(f"parity changed from {parity:.3g} to {recheck:.3g} after writing metadata; file removed")
    return ExportReport(out, parity, gate.samples, metadata, gate.description)


@dataclass(frozen=True)
class ParityGate:
    """What export compares torch and onnxruntime on: ``measure(path)`` is the largest action difference."""

    measure: Callable[[Path], float]
    samples: int
    description: str


def parity_gate(policy: GaussianActorCritic, cfg: TrainConfig, num_observations: int) -> ParityGate:
    """Observations recorded in the training env; for a recurrent policy whole sequences across episode
    boundaries, stepped with the state (robopg/recurrent_export.py)."""
    seed = seeds.export_recording_seed(cfg.run.seed)
    if isinstance(policy, RecurrentActorCritic):
        recorded = record_sequences(policy, cfg.env, seed=seed)
        return ParityGate(lambda path: sequence_max_abs_diff(path, policy, recorded), recorded.samples,
                          recorded.describe())
    observations = record_observations(policy, cfg.env, num_observations, seed=seed)
    return ParityGate(lambda path: max_abs_diff(path, policy, observations), len(observations),
                      f"{len(observations)} recorded observations")
