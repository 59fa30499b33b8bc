"""Presets: complete, measured training recipes shipped as package data (TOML in the config-file format).

`robopg train --preset NAME` starts from the preset; `--config FILE` and flags override it (defaults < preset <
config file < flags). Each file's `[preset]` table holds its one-line description for `robopg presets`; every
other table is a config section. The preset's name is recorded as `run.preset` in config.json and the exported
file's metadata. What each recipe reached, with the command: docs/bench_manipulation.md.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

PRESETS_DIR = Path(__file__).parent
PRESET_TABLE = "preset"


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def _read(name: str) -> dict[str, Any]:
    path = PRESETS_DIR / f"{name}.toml"
    if not path.is_file():
        raise ValueError(f"unknown preset '{name}'; known: {', '.join(preset_names())} (robopg presets lists them)")
    return tomllib.loads(path.read_text())


def preset_sections(name: str) -> dict[str, dict[str, Any]]:
    """The config sections of preset ``name`` ({section: {field: value}}), with run.preset set to its name."""
    data = {k: dict(v) for k, v in _read(name).items() if k != PRESET_TABLE}
    data.setdefault("run", {})["preset"] = name
    return data


def describe(name: str) -> str:
    """The preset's one-line description."""
    return str(_read(name).get(PRESET_TABLE, {}).get("description", ""))
