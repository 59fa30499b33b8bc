"""Fixtures writing real policy files into tmp_path (see policy_fixtures.py for what they contain)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from policy_fixtures import build_model, make_metadata

from policies_export.metadata import PolicyMetadata


@pytest.fixture
def write_policy(tmp_path: Path) -> Callable[..., Path]:
    """write_policy(name="policy.onnx", metadata=..., **build_model_kwargs) -> path of the written file."""

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
            text = (metadata or make_metadata()).to_json()
        path = tmp_path / name
        path.write_bytes(build_model(metadata_json=text, **kwargs).SerializeToString())
        return path

    return _write


@pytest.fixture
def policy_path(write_policy: Callable[..., Path]) -> Path:
    return write_policy()
