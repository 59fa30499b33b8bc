"""Checkpoints: written atomically, carrying a digest of their state, and read back with the damage named.

A checkpoint is ``torch.save`` of the trainer's state dict plus ``"sha256"``: the digest of the state it holds
(``state_digest``). Loading recomputes it; a mismatch means the file changed after it was written (a bad disk, a
bad copy, an edit) and the checkpoint is refused rather than trained or exported from.

The digest is over the state's content, not the file's bytes: every tensor and array as its dtype, shape and raw
bytes, every other value by type and value, dicts in their order (which pickling keeps), walked depth first. It
therefore does not depend on how torch lays the zip archive out, and a flipped byte anywhere in the data changes
it. A flipped byte in the archive's structure makes ``torch.load`` fail instead: ``UnreadableCheckpointError``.

A run directory's checkpoint (``load_run_checkpoint``): the named files first (``latest.pt`` to resume,
``final.pt`` to export), then ``checkpoints/step_*.pt`` newest first. An unreadable one (empty, truncated) is
passed over with a ``CheckpointWarning`` naming the one used instead; a damaged one (digest mismatch) is refused,
naming the newest intact one to fall back to by hand.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import struct
import tempfile
import warnings
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import torch

from policies_export.errors import FileWarning

FINAL = "final.pt"
LATEST = "latest.pt"
STEP_GLOB = "checkpoints/step_*.pt"
DIGEST_KEY = "sha256"


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message names the file and the fix."""


class UnreadableCheckpointError(CheckpointError):
    """The file is empty, truncated or not a robopg checkpoint: ``torch.load`` cannot read it."""


class CorruptCheckpointError(CheckpointError):
    """The file reads, but its state does not match the digest recorded when it was written."""


class CheckpointWarning(FileWarning):
    """A checkpoint was used with a caveat: an older one in place of an unreadable one, or one without a digest."""


@dataclass(frozen=True)
class RunCheckpoint:
    path: Path
    """The checkpoint file the state came from."""
    state: dict[str, Any]
    """The trainer's state (robopg/runners/trainer.py ``Trainer.state_dict``), digest checked and removed."""


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


def state_digest(state: dict[str, Any]) -> str:
    """sha256 over the content of ``state`` without its ``DIGEST_KEY`` (see the module docstring)."""
    digest = hashlib.sha256()
    _feed(digest, {key: value for key, value in state.items() if key != DIGEST_KEY})
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    """Hash one value with a type tag, so that e.g. 1, 1.0, "1" and [1] all hash differently."""
    if value is None:
        digest.update(b"N")
    elif isinstance(value, bool):  # before int: bool is an int subclass
        digest.update(b"B1" if value else b"B0")
    elif isinstance(value, Enum):
        digest.update(b"E")
        _feed(digest, value.value)
    elif isinstance(value, int):
        digest.update(b"I%d;" % value)
    elif isinstance(value, float):
        digest.update(b"F" + struct.pack("<d", value))
    elif isinstance(value, str | bytes):
        raw = value.encode("utf-8") if isinstance(value, str) else value
        digest.update(b"S" if isinstance(value, str) else b"Y")
        digest.update(b"%d;" % len(raw) + raw)
    elif isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(b"T" + str(tensor.dtype).encode() + str(tuple(tensor.shape)).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, np.ndarray | np.generic):
        array = np.ascontiguousarray(value)
        digest.update(b"A" + array.dtype.str.encode() + str(array.shape).encode() + array.tobytes())
    elif isinstance(value, dict):
        digest.update(b"D%d;" % len(value))
        for key, item in value.items():
            _feed(digest, key)
            _feed(digest, item)
    elif isinstance(value, list | tuple):
        digest.update(b"L%d;" % len(value))
        for item in value:
            _feed(digest, item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        digest.update(b"C" + type(value).__qualname__.encode())
        _feed(digest, {field.name: getattr(value, field.name) for field in dataclasses.fields(value)})
    else:
        raise TypeError(f"state_digest cannot hash a {type(value).__qualname__}; store it as data (dict, tensor, ...)")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` with its digest to ``path`` atomically."""
    stamped = {**state, DIGEST_KEY: state_digest(state)}
    atomic_write_bytes(path, lambda f: torch.save(stamped, f))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The state saved in ``path``, its digest checked (and removed).

    Raises ``UnreadableCheckpointError`` for a missing, empty, truncated or foreign file and
    ``CorruptCheckpointError`` for a digest mismatch; warns (``CheckpointWarning``) for a file without a digest.
    """
    path = Path(path)
    if not path.is_file():
        raise UnreadableCheckpointError(f"no checkpoint at {path}; is this a robopg run directory?")
    if path.stat().st_size == 0:
        raise UnreadableCheckpointError(f"{path} is empty (0 bytes)")
    try:
        # weights_only=False: the checkpoint holds RNG states (numpy arrays, tuples) besides tensors; our own file.
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # zip, pickle and torch errors alike: the bytes do not make a checkpoint
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UnreadableCheckpointError(
            f"{path} cannot be read: truncated, or not a robopg checkpoint ({reason})"
        ) from None
    if not isinstance(state, dict) or "policy" not in state:
        raise UnreadableCheckpointError(f"{path} is not a robopg checkpoint (no policy state in it)")
    recorded = state.pop(DIGEST_KEY, None)
    if recorded is None:
        warnings.warn(
            CheckpointWarning(
                f"{path} has no digest (written by an older robopg), so damage to it cannot be detected; "
                "the next checkpoint this run writes will have one"
            ),
            stacklevel=2,
        )
    elif recorded != state_digest(state):
        raise CorruptCheckpointError(
            f"{path} is damaged: its content no longer matches the digest recorded when it was written "
            "(a bad disk, a bad copy or an edit), so it is refused"
        )
    return state


def run_checkpoint_candidates(run_dir: Path, names: tuple[str, ...]) -> list[Path]:
    """``run_dir / name`` for each existing name, then the periodic checkpoints, newest step first."""
    named = [run_dir / name for name in names if (run_dir / name).exists()]
    return named + sorted(run_dir.glob(STEP_GLOB), reverse=True)  # step numbers are zero-padded: name order


def load_run_checkpoint(run_dir: Path, names: tuple[str, ...]) -> RunCheckpoint:
    """The newest usable checkpoint of a run: ``names`` in order (e.g. ``(LATEST, FINAL)``), then
    ``checkpoints/step_*.pt`` newest first. Unreadable files are passed over with a ``CheckpointWarning`` naming
    the one used; a damaged one (digest mismatch) raises ``CorruptCheckpointError`` naming the newest intact one.
    Raises ``CheckpointError`` when the run holds no checkpoint or none is readable.
    """
    run_dir = Path(run_dir)
    candidates = run_checkpoint_candidates(run_dir, names)
    if not candidates:
        raise CheckpointError(
            f"{run_dir} holds no checkpoint ({', '.join(names)} or {STEP_GLOB}); pass the --out directory of a "
            "robopg train run that has written one"
        )
    skipped: list[str] = []
    for index, path in enumerate(candidates):
        try:
            state = load_checkpoint(path)
        except UnreadableCheckpointError as err:
            skipped.append(str(err))
            continue
        except CorruptCheckpointError as err:
            raise CorruptCheckpointError(f"{err}. Fix: {_fallback_fix(run_dir, candidates[index + 1 :])}") from None
        if skipped:
            warnings.warn(
                CheckpointWarning(f"{'; '.join(skipped)}; using {path} (step {state['global_step']}) instead"),
                stacklevel=2,
            )
        return RunCheckpoint(path, state)
    raise CheckpointError(
        f"no intact checkpoint in {run_dir}: {'; '.join(skipped)}. Fix: restore the run directory from a copy, "
        "or start a new run"
    )


def _fallback_fix(run_dir: Path, older: list[Path]) -> str:
    """What to do instead of a damaged checkpoint: name the newest intact one, if there is one."""
    for path in older:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CheckpointWarning)
                step = load_checkpoint(path)["global_step"]
        except CheckpointError:
            continue
        resume = (
            f"`robopg train --resume {run_dir}` resumes from it" if path == run_dir / LATEST
            else f"copy it over {run_dir / LATEST} to resume from it"
        )
        return (
            f"restore the file from a copy, or use the newest intact checkpoint, {path} (step {step}): "
            f"`robopg export {path} --out FILE` exports it, {resume}"
        )
    return "restore the file from a copy; this run holds no other intact checkpoint"
