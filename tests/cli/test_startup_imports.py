"""Start-up stays light: heavy modules are imported only by the commands and functions that use
them (`nngraph --version` and `nngraph check` were 0.5-1 s of imports before)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ["lark", "networkx", "pydot", "onnx", "onnxruntime", "jax", "matplotlib", "torch", "nngraph.visualize",
         "nngraph.explain", "nngraph.onnx"]


def imported_after(code: str, modules: list[str] = HEAVY) -> set[str]:
    probe = code + f"\nimport json, sys\nprint(json.dumps(sorted(m for m in {modules!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_version_imports_nothing_heavy():
    code = "from nngraph.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass"
    assert imported_after(code, HEAVY + ["nngraph.api", "nngraph.dsl.elaborate"]) == set()


def test_checking_a_valid_model_needs_neither_lark_nor_the_visualizer():
    code = "from nngraph.cli import main\nmain(['check', 'models/transformer.nn'])"
    assert imported_after(code) == set()


def test_a_syntax_error_still_gets_lark_and_its_diagnostic(tmp_path):
    bad = tmp_path / "bad.nn"
    bad.write_text("model m {\n    y = a < b < c\n}\n")
    code = f"from nngraph.cli import main\nassert main(['check', {str(bad)!r}]) == 1"
    assert imported_after(code) == {"lark"}


def test_import_nngraph_is_lazy_but_complete():
    code = ("import sys, nngraph\nassert 'nngraph.api' not in sys.modules\n"
            "assert nngraph.load and nngraph.Model and nngraph.NNError and nngraph.runtime.get('numpy')")
    assert imported_after(code) == set()
