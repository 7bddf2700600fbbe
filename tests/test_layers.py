"""The layered design, checked: every import of every module (those inside functions too) points
down the layer order, and no set of modules imports itself in a loop.

    base (diagnostics, files) <- ir <- ops <- autodiff, passes <- training <- dsl, onnx <- api <- cli

Backends (nngraph.runtime.*) depend on base, ir and ops only. Two exceptions, each one module wide:
the NumPy backend is nngraph's reference semantics, so constant folding and the ONNX importer
compute through its one entry point, `nngraph.runtime.numpy`; and the onnxruntime backend runs
*exported* graphs, so it may use the ONNX exporter (`nngraph.onnx.export` and its lowering table).
"""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"nngraph": "nngraph", "dsl": "nngraph.dsl", "runtime": "nngraph.runtime"}

# lowest first; a module may import its own layer and those below
LAYERS = [
    ("base", ["nngraph.diagnostics", "nngraph.files"]),
    ("ir", ["nngraph.ir"]),
    ("ops", ["nngraph.ops"]),
    ("backends", ["nngraph.runtime"]),
    ("autodiff/passes", ["nngraph.autodiff", "nngraph.passes", "nngraph.verify", "nngraph.printer"]),
    ("training", ["nngraph.training"]),
    ("dsl/onnx", ["nngraph.dsl", "nngraph.onnx"]),
    ("api", ["nngraph.api", "nngraph.visualize"]),
    ("cli", ["nngraph.cli", "nngraph"]),
]
BACKEND_MAY_IMPORT = {"base", "ir", "ops", "backends"}
REFERENCE_SEMANTICS = "nngraph.runtime.numpy"      # the one backend module passes and onnx may import
API_MAY_CHOOSE = {"api", "cli"}                    # only they pick a backend by name
RUNS_EXPORTED_GRAPHS = ("nngraph.runtime.onnxruntime", {"nngraph.onnx.export", "nngraph.onnx.lower.registry"})


def module_files() -> dict[str, Path]:
    modules = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package,) + parts)] = path
    return modules


MODULES = module_files()


def imports_of(path: Path, module: str) -> set[str]:
    """The nngraph modules `module` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
                for _ in range(node.level - 1):
                    package = package.rsplit(".", 1)[0]
                base = f"{package}.{base}" if base else package
            # `from package import submodule` imports the submodule
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        found.update(n for n in names if n in MODULES)
    found.discard(module)
    return found


def layer_of(module: str) -> str:
    best, best_len = None, -1
    for name, prefixes in LAYERS:
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = name, len(p)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


RANK = {name: i for i, (name, _) in enumerate(LAYERS)}
GRAPH = nx.DiGraph()
for _module, _path in MODULES.items():
    GRAPH.add_node(_module)
    GRAPH.add_edges_from((_module, target) for target in imports_of(_path, _module))


def upward(module: str, target: str) -> bool:
    mine, theirs = layer_of(module), layer_of(target)
    if mine == "backends":
        backend, exporter = RUNS_EXPORTED_GRAPHS
        if (module == backend or module.startswith(backend + ".")) and target in exporter:
            return False
        return theirs not in BACKEND_MAY_IMPORT
    if theirs == "backends":
        if target == REFERENCE_SEMANTICS or target == "nngraph.runtime":
            return False
        return mine not in API_MAY_CHOOSE
    return RANK[theirs] > RANK[mine]


def test_no_import_cycles():
    cycles = list(nx.simple_cycles(GRAPH))
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c + [c[0]]) for c in cycles)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layer_order(module):
    wrong = sorted(t for t in GRAPH.successors(module) if upward(module, t))
    assert not wrong, f"{module} ({layer_of(module)}) imports " + ", ".join(f"{t} ({layer_of(t)})" for t in wrong)


def test_the_language_front_end_imports_no_backend():
    dsl = [m for m in MODULES if m.startswith("nngraph.dsl")]
    reached = set().union(*(nx.descendants(GRAPH, m) for m in dsl))
    backends = sorted(m for m in reached if m.startswith("nngraph.runtime."))
    assert not backends, f"nngraph.dsl reaches {backends}"


def test_the_checker_sees_imports_inside_functions(tmp_path):
    # a deferred import counts: loops hidden in function bodies would go unseen otherwise
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from nngraph.api import load\n    from nngraph import ops\n")
    assert imports_of(probe, "nngraph.probe") == {"nngraph.api", "nngraph.ops"}


def test_no_source_file_is_over_600_lines():
    long = {str(p.relative_to(ROOT)): n for p in MODULES.values() if (n := len(p.read_text().splitlines())) > 600}
    assert not long, f"split these by concern: {long}"


def test_every_backend_mirrors_the_op_families():
    """An op's meaning lives in nngraph/ops/<family>.py; its NumPy kernel, JAX lowering and ONNX
    lowering in files of the same family name (plus each folder's registry)."""
    families = {p.stem for p in (ROOT / "nngraph/ops").glob("*.py")} - {"__init__", "rules"}
    for folder in ("runtime/numpy/kernels", "runtime/jax/ops", "nngraph/onnx/lower"):
        files = {p.stem for p in (ROOT / folder).glob("*.py")} - {"__init__", "registry"}
        assert files == families, f"{folder}: {sorted(files ^ families)} do not mirror nngraph/ops/"
