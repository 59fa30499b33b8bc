"""Torch-free robot-side runtime for robopg policies: numpy + onnxruntime + the standard library only.

    from policies_export import Controller
    controller = Controller.load("policy.onnx")
    action = controller.act(obs)

One concept per file: ``metadata`` (the file's self-description), ``runtime`` (Controller: load, validate,
infer), ``safety`` (every check on values), ``robot`` (the Robot protocol), ``replay`` (a log as a robot),
``loop`` (fixed-rate control loop), ``telemetry`` (tick log and summary), ``cli`` (``robopg-controller``).

``Controller`` is imported on first use, so ``import policies_export.metadata`` (what the exporter
needs) does not pay for loading onnxruntime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from policies_export.errors import ObservationError, PolicyFileError
from policies_export.metadata import FORMAT_VERSION, METADATA_KEY, PolicyMetadata

if TYPE_CHECKING:
    from policies_export.runtime import Controller

__all__ = [
    "FORMAT_VERSION",
    "METADATA_KEY",
    "Controller",
    "ObservationError",
    "PolicyFileError",
    "PolicyMetadata",
]


def __getattr__(name: str) -> object:
    # PEP 562 lazy attribute: only Controller needs onnxruntime.
    if name == "Controller":
        from policies_export.runtime import Controller

        return Controller
    raise AttributeError(f"module 'policies_export' has no attribute {name!r}")
