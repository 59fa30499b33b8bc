"""Fixtures writing real policy files into tmp_path (see policy_fixtures.py for what they contain)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from policy_fixtures import W, build_model, make_metadata

from policies_export import integrity
from policies_export.metadata import PolicyMetadata


@pytest.fixture
def write_policy(tmp_path: Path) -> Callable[..., Path]:
    """write_policy(name="policy.onnx", metadata=..., **build_model_kwargs) -> path of the written file.

    Written as robopg export writes: with an integrity digest (metadata as text gets one only if it holds
    ``integrity.PLACEHOLDER``) and, unless ``clip_low``/``clip_high`` say otherwise, a graph that clips to the
    metadata's action bounds."""

    def _write(
        name: str = "policy.onnx",
        *,
        metadata: PolicyMetadata | str | None = None,
        with_metadata: bool = True,
        **kwargs,
    ) -> Path:
        if not with_metadata:
            text = None
        elif isinstance(metadata, str):
            text = metadata
        else:
            meta = metadata or make_metadata()
            if len(meta.action_low) == kwargs.get("weight", W).shape[0]:
                kwargs.setdefault("clip_low", meta.action_low)
                kwargs.setdefault("clip_high", meta.action_high)
            text = dataclasses.replace(meta, sha256=integrity.PLACEHOLDER).to_json()
        data = build_model(metadata_json=text, **kwargs).SerializeToString()
        if text is not None and integrity.PLACEHOLDER in text:
            data, _ = integrity.stamp(data)
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return _write


@pytest.fixture
def policy_path(write_policy: Callable[..., Path]) -> Path:
    return write_policy()
