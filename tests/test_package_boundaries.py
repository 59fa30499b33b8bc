"""The package boundaries of docs/design.md, enforced.

| package          | never imports                                                     |
|------------------|-------------------------------------------------------------------|
| policies_export  | torch, mujoco, gymnasium, gymnasium_robotics, envs, robopg, onnx  |
| envs             | torch, robopg, policies_export                                    |

Two checks: a static one (every import statement in every .py file, via ast), and a dynamic one (import
the package in a fresh interpreter and look at sys.modules, which also catches transitive imports).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN: dict[str, frozenset[str]] = {
    "policies_export": frozenset(
        {"torch", "mujoco", "gymnasium", "gymnasium_robotics", "envs", "robopg", "onnx"}
    ),
    "envs": frozenset({"torch", "robopg", "policies_export"}),
}


def _imported_top_level_modules(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) for every absolute import in a file; relative imports stay in-package."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_forbidden_import_statements(package: str) -> None:
    package_dir = REPO_ROOT / package
    files = sorted(package_dir.rglob("*.py"))
    assert files, f"no .py files under {package_dir}"
    violations = [
        f"{path.relative_to(REPO_ROOT)}:{line}: imports {module}"
        for path in files
        for line, module in _imported_top_level_modules(path)
        if module in FORBIDDEN[package]
    ]
    assert not violations, f"{package} must not import {sorted(FORBIDDEN[package])}:\n" + "\n".join(
        violations
    )


def _modules_loaded_by(import_statement: str) -> set[str]:
    """Top-level module names in sys.modules after running ``import_statement`` in a fresh interpreter."""
    code = (
        "import json, sys\n"
        f"{import_statement}\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"`{import_statement}` failed in a fresh interpreter:\n{result.stderr}"
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_runtime_import_pulls_in_no_training_stack() -> None:
    loaded = _modules_loaded_by("import policies_export.runtime")
    assert "onnxruntime" in loaded  # sanity: the check saw the real import
    unwanted = {"torch", "mujoco", "gymnasium", "envs", "robopg"} & loaded
    assert not unwanted, f"importing policies_export.runtime loaded {sorted(unwanted)}"


def test_metadata_import_does_not_load_onnxruntime() -> None:
    """The exporter imports the metadata module; that should not cost an onnxruntime import."""
    loaded = _modules_loaded_by("import policies_export.metadata")
    assert "onnxruntime" not in loaded


def test_envs_import_pulls_in_no_torch_or_robopg() -> None:
    loaded = _modules_loaded_by("import envs")
    unwanted = {"torch", "robopg"} & loaded
    assert not unwanted, f"importing envs loaded {sorted(unwanted)}"
