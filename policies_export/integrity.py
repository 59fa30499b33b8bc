"""Integrity of a policy file: a sha256 digest written at export and checked by every load.

The digest covers every byte of the file (graph, weights and metadata) except the 64 hex digits that record it::

    digest = sha256(the file's bytes, with the 64 hex digits of the digest replaced by 64 ASCII "0")

It sits in the metadata document as ``"sha256": "<64 lowercase hex digits>"``. Export writes the document with
``PLACEHOLDER`` (64 zeros) there, serialises the model, hashes those bytes and writes the digest over the
placeholder (``stamp``): the same length, so no protobuf length prefix changes and the file parses the same.
``check`` reverses it: it finds the recorded digits in the raw bytes (exactly once), puts the zeros back and
hashes again.

Why the raw bytes and not a re-serialised model: the robot has no onnx or protobuf library, and the raw bytes are
exactly what onnxruntime runs. A flipped bit anywhere (a weight, a metadata bound, the digest itself) changes
the hash; a protobuf that no longer parses is refused earlier, by onnxruntime.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from pathlib import Path

from policies_export.errors import PolicyFileError, PolicyFileWarning

DIGEST_FIELD = "sha256"
"""Key of the digest in the metadata document."""

PLACEHOLDER = "0" * 64
"""What the digest's 64 hex digits are replaced by while hashing (and what export writes before stamping)."""

_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_REEXPORT_FIX = "Fix: re-export it with `robopg export RUN_DIR --out FILE` and copy the new file over"


def file_digest(data: bytes, recorded: str) -> str:
    """sha256 of ``data`` with ``recorded`` (64 hex digits, present exactly once) replaced by the placeholder."""
    return hashlib.sha256(data.replace(recorded.encode("ascii"), PLACEHOLDER.encode("ascii"))).hexdigest()


def stamp(data: bytes) -> tuple[bytes, str]:
    """Serialised model whose metadata holds ``PLACEHOLDER`` -> (the same bytes with the digest in its place,
    the digest). Raises ValueError unless the placeholder occurs exactly once."""
    count = data.count(PLACEHOLDER.encode("ascii"))
    if count != 1:
        raise ValueError(
            f"the digest placeholder occurs {count} times in the serialised model, expected once in the metadata"
        )
    digest = hashlib.sha256(data).hexdigest()
    return data.replace(PLACEHOLDER.encode("ascii"), digest.encode("ascii")), digest


def recorded_digest(metadata_text: str) -> str | None:
    """The digest a metadata document records, None if it records none (or is not a JSON object: the metadata
    parser reports that with its own message)."""
    try:
        doc = json.loads(metadata_text)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    return doc.get(DIGEST_FIELD)


def check(data: bytes, metadata_text: str, path: Path) -> bool:
    """Verify the file's digest. data: the file's bytes; metadata_text: its robopg metadata document.

    Returns True when verified, False for a file without a digest (written before robopg recorded one), after a
    ``PolicyFileWarning``. Raises ``PolicyFileError`` naming the file and the fix when the digest is malformed
    or does not match: the file changed after export.
    """
    recorded = recorded_digest(metadata_text)
    if recorded is None:
        warnings.warn(
            PolicyFileWarning(
                f"{path}: no integrity digest (exported before robopg recorded one), so a corrupted copy "
                f"cannot be told from the original. {_REEXPORT_FIX}"
            ),
            stacklevel=3,
        )
        return False
    if not isinstance(recorded, str) or not _HEX_DIGEST.fullmatch(recorded):
        raise PolicyFileError(
            f"{path}: metadata field '{DIGEST_FIELD}' must be 64 lowercase hex digits, got {recorded!r}: the file "
            f"was damaged or edited after export. {_REEXPORT_FIX}"
        )
    occurrences = data.count(recorded.encode("ascii"))
    if occurrences != 1:
        raise PolicyFileError(
            f"{path}: the recorded digest occurs {occurrences} times in the file, robopg export writes it once: "
            f"the file was edited after export. {_REEXPORT_FIX}"
        )
    actual = file_digest(data, recorded)
    if actual != recorded:
        raise PolicyFileError(
            f"{path}: integrity check failed: sha256 {actual[:16]}... != {recorded[:16]}... recorded at export, "
            f"so the file changed after export (a damaged copy, a bad disk or an edit). {_REEXPORT_FIX}"
        )
    return True
