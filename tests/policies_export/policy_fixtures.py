"""Fixture policy files for the runtime tests, built with onnx.helper: obs (5) -> Gemm -> + action_probe ->
per-dimension clip -> action (2), like robopg export's graphs (the probe lets Controller.load compare the clip
with the metadata's bounds).

onnx is used here only to *write* fixture files; the runtime under test never imports it.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from policies_export.metadata import FORMAT_VERSION, METADATA_KEY, PolicyMetadata

LAYOUT = (("joint_pos", 3), ("goal", 2))
OBS_DIM = 5
ACT_DIM = 2
ACTION_LOW = (-1.0, -2.0)
ACTION_HIGH = (1.0, 2.0)
# Small weights so a unit-scale observation lands inside the bounds; tests pick inputs to hit the clip.
# W: (act_dim, obs_dim), B: (act_dim,)
W = np.array([[0.1, -0.2, 0.3, 0.0, 0.5], [-0.4, 0.1, 0.0, 0.2, -0.1]], dtype=np.float32)
B = np.array([0.05, -0.1], dtype=np.float32)


def make_metadata(**overrides: object) -> PolicyMetadata:
    fields = dict(
        format_version=FORMAT_VERSION,
        task="robopg/TestReach-v0",
        algorithm="ppo",
        observation_layout=LAYOUT,
        action_low=ACTION_LOW,
        action_high=ACTION_HIGH,
        control_rate_hz=25.0,
        training_steps=50_000,
        seed=3,
        randomization={"friction": {"distribution": "uniform", "low": 0.8, "high": 1.2, "scaled": True}},
        robopg_version="0.1.0",
        parity_max_abs_diff=2.5e-7,
        exported_at="2025-01-31T12:00:00+00:00",
    )
    fields.update(overrides)
    return PolicyMetadata(**fields)


def build_model(
    *,
    weight: np.ndarray = W,
    bias: np.ndarray = B,
    clip: bool = True,
    clip_low: tuple[float, ...] = ACTION_LOW,
    clip_high: tuple[float, ...] = ACTION_HIGH,
    probe: bool | None = None,
    scale: np.ndarray | None = None,
    metadata_json: str | None = None,
    input_name: str = "obs",
    output_name: str = "action",
    batch_dim: str | int = "batch",
) -> onnx.ModelProto:
    """action = clip(obs @ weight.T + bias + action_probe) [* scale]; ``metadata_json`` None leaves out robopg
    metadata. ``probe`` (default: with the clip and without a scale) adds the overridable ``action_probe``."""
    act_dim, obs_dim = weight.shape
    initializers = [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "b")]
    nodes = [helper.make_node("Gemm", [input_name, "W", "b"], ["y"], transB=1)]
    extra_inputs = []
    last = "y"
    if probe if probe is not None else (clip and scale is None):
        initializers.append(numpy_helper.from_array(np.zeros(act_dim, np.float32), "action_probe"))
        extra_inputs.append(helper.make_tensor_value_info("action_probe", TensorProto.FLOAT, [act_dim]))
        nodes.append(helper.make_node("Add", [last, "action_probe"], ["y_probed"]))
        last = "y_probed"
    if clip:
        initializers += [
            numpy_helper.from_array(np.asarray(clip_low, np.float32), "low"),
            numpy_helper.from_array(np.asarray(clip_high, np.float32), "high"),
        ]
        nodes += [
            helper.make_node("Max", [last, "low"], ["y_lo"]),
            helper.make_node("Min", ["y_lo", "high"], ["y_clip"]),
        ]
        last = "y_clip"
    if scale is not None:
        initializers.append(numpy_helper.from_array(scale.astype(np.float32), "scale"))
        nodes.append(helper.make_node("Mul", [last, "scale"], ["y_scaled"]))
        last = "y_scaled"
    nodes.append(helper.make_node("Identity", [last], [output_name]))
    graph = helper.make_graph(
        nodes,
        "test_policy",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch_dim, obs_dim]), *extra_inputs],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [batch_dim, act_dim])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by any onnxruntime >= 1.17
    if metadata_json is not None:
        helper.set_model_props(model, {METADATA_KEY: metadata_json})
    onnx.checker.check_model(model)
    return model


def expected_action(obs: np.ndarray) -> np.ndarray:
    """Hand-computed reference: W x + b, clipped per dimension."""
    y = W.astype(np.float64) @ np.asarray(obs, np.float64) + B
    return np.clip(y, ACTION_LOW, ACTION_HIGH)


# A recurrent fixture: an accumulator memory, hand-computable. State (1, batch, H), H = 3:
#   LSTM kind (h, c):  c_t = c_{t-1} + x_t V^T,  h_t = tanh(c_t)       (h_in is read and passed on, unused)
#   GRU kind (h):      h_t = h_{t-1} + x_t V^T
#   action_t = clip(tanh(c_t or h_t) W2^T + B + action_probe)
H = 3
V = np.array([[0.2, -0.1, 0.0, 0.3, 0.1], [0.0, 0.4, -0.2, 0.1, 0.0], [-0.3, 0.0, 0.1, 0.0, 0.2]], dtype=np.float32)
W2 = np.array([[0.5, -0.4, 0.3], [-0.2, 0.6, 0.1]], dtype=np.float32)


def recurrence_dict(kind: str = "lstm") -> dict:
    names = {"lstm": (["h_in", "c_in"], ["h_out", "c_out"]), "gru": (["h_in"], ["h_out"])}[kind]
    return {"kind": kind, "layers": 1, "hidden_size": H, "inputs": names[0], "outputs": names[1],
            "shape": [1, "batch", H], "reset": "zeros at an episode's start"}


def build_recurrent_model(*, kind: str = "lstm", metadata_json: str | None = None, input_dim: int = OBS_DIM,
                          state_inputs: tuple[str, ...] | None = None) -> onnx.ModelProto:
    """The accumulator above as an ONNX graph with the state inputs/outputs robopg export gives a ``kind`` policy
    (``state_inputs`` overrides the input names, for signature tests); clip to ACTION_LOW / ACTION_HIGH."""
    v = V if input_dim == OBS_DIM else np.random.default_rng(1).normal(scale=0.1, size=(H, input_dim)).astype(np.float32)
    state_inputs = state_inputs or (("h_in", "c_in") if kind == "lstm" else ("h_in",))
    memory_in, memory_out = state_inputs[-1], "c_out" if kind == "lstm" else "h_out"
    inputs = [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", input_dim])]
    for name in state_inputs:
        inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, "batch", H]))
    inputs.append(helper.make_tensor_value_info("action_probe", TensorProto.FLOAT, [ACT_DIM]))
    initializers = [
        numpy_helper.from_array(v.T.copy(), "Vt"), numpy_helper.from_array(W2, "W2"),
        numpy_helper.from_array(B, "b"), numpy_helper.from_array(np.zeros(ACT_DIM, np.float32), "action_probe"),
        numpy_helper.from_array(np.asarray(ACTION_LOW, np.float32), "low"),
        numpy_helper.from_array(np.asarray(ACTION_HIGH, np.float32), "high"),
        numpy_helper.from_array(np.array([0], np.int64), "axis0"),
    ]
    nodes = [
        helper.make_node("MatMul", ["obs", "Vt"], ["xv"]),
        helper.make_node("Unsqueeze", ["xv", "axis0"], ["xv3"]),
        helper.make_node("Add", [memory_in, "xv3"], [memory_out]),
        helper.make_node("Squeeze", [memory_out, "axis0"], ["m"]),
        helper.make_node("Tanh", ["m"], ["tm"]),
        helper.make_node("Gemm", ["tm", "W2", "b"], ["y"], transB=1),
        helper.make_node("Add", ["y", "action_probe"], ["yp"]),
        helper.make_node("Max", ["yp", "low"], ["ylo"]),
        helper.make_node("Min", ["ylo", "high"], ["action"]),
    ]
    outputs = [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", ACT_DIM])]
    if kind == "lstm":
        nodes.append(helper.make_node("Tanh", [memory_out], ["h_out"]))
        outputs.append(helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [1, "batch", H]))
    outputs.append(helper.make_tensor_value_info(memory_out, TensorProto.FLOAT, [1, "batch", H]))
    graph = helper.make_graph(nodes, "test_recurrent_policy", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata_json is not None:
        helper.set_model_props(model, {METADATA_KEY: metadata_json})
    onnx.checker.check_model(model)
    return model


def recurrent_reference(observations: np.ndarray, memory: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hand-computed actions (T, act_dim) of the accumulator on observations (T, obs_dim) from ``memory`` (H,)
    (zeros: an episode's start), and the memory after them."""
    m = np.zeros(H) if memory is None else np.asarray(memory, np.float64)
    actions = []
    for x in np.asarray(observations, np.float64):
        m = m + V.astype(np.float64) @ x
        actions.append(np.clip(W2.astype(np.float64) @ np.tanh(m) + B, ACTION_LOW, ACTION_HIGH))
    return np.array(actions), m
