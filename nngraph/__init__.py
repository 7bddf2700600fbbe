"""nngraph: a declarative neural-network graph compiler.

.nn text -> AST -> typed graph IR -> passes -> symbolic autodiff -> NumPy runtime / ONNX.
"""
from __future__ import annotations

import importlib
import importlib.util

__all__ = ["Model", "load", "load_npz", "save_npz", "NNError"]

# The public names are imported on first use (PEP 562): `import nngraph.cli` for `nngraph --version`
# or a command that needs little should not pay for the whole compiler's imports.
_HOME = {"Model": "nngraph.api", "load": "nngraph.api", "NNError": "nngraph.diagnostics",
         "load_npz": "nngraph.files", "save_npz": "nngraph.files"}


def __getattr__(name: str):
    if name in _HOME:
        value = getattr(importlib.import_module(_HOME[name]), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f"{__name__}.{name}")    # `nngraph.runtime.get(...)` after `import nngraph`
    else:
        raise AttributeError(f"module 'nngraph' has no attribute {name!r}")
    globals()[name] = value          # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
