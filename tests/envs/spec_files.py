"""Helper for the envs tests: a TOML spec that fixes the named parameters (imported by the test modules)."""

from pathlib import Path


def spec_file(tmp_path: Path, **fixed: float) -> Path:
    """tmp_path/spec.toml with each named parameter fixed to its value."""
    text = "".join(f'[{name}]\ndistribution = "fixed"\nvalue = {value}\n' for name, value in fixed.items())
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path
