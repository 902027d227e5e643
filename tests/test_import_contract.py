"""The house's import contract (.importlinter; README, "Layers"): delivery above the
platform above the libraries above the base, FastAPI only at the edge, no loops inside a
package. A new upward import or loop fails here, with import-linter's account of it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sandbox", "query_guard", "export_review", "hub_config")


def test_the_import_contract_holds() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout, run.stdout


def test_no_import_hides_in_a_string() -> None:
    """A module named in a string (``importlib.import_module``, ``__import__``) is an
    import the contract cannot see."""
    hidden = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
                if name in ("import_module", "__import__"):
                    hidden.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not hidden, "import these by name instead: " + ", ".join(hidden)
