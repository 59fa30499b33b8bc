"""Checkpoints written atomically: a crash mid-write never leaves a half file under the final name."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

FINAL = "final.pt"
LATEST = "latest.pt"


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Call ``write(file_object)`` on a temporary file beside ``path``, fsync it, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    atomic_write_bytes(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; is this a robopg run directory?")
    # weights_only=False: the checkpoint holds RNG states (numpy arrays, tuples) besides tensors; it is our own file.
    return torch.load(path, map_location="cpu", weights_only=False)


def latest_checkpoint(run_dir: Path) -> Path:
    """The newest checkpoint of a run: latest.pt (rewritten at every save)."""
    path = Path(run_dir) / LATEST
    if not path.is_file():
        raise FileNotFoundError(
            f"{run_dir} has no {LATEST}; train into it first (robopg train --out {run_dir}) "
            "or point at a run directory that holds checkpoints"
        )
    return path
