"""Loading .nn files: parsing, following imports, and assembling the names a model can use
(builtins, then the standard library, then imported layers, then the file's own layers)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from nngraph.diagnostics import NNError, Span
from nngraph.dsl import ast
from nngraph.dsl.builtins import BUILTINS
from nngraph.dsl.parser import parse
from nngraph.dsl.values import LayerTemplate

STDLIB = Path(__file__).parent / "stdlib"


@dataclass
class Program:
    module: ast.Module                         # the file that was asked for
    names: dict = field(default_factory=dict)  # every global name: builtins and layer templates


def read_source(path: str, span: Span | None = None) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise NNError(f"no such file: {path}", span) from None
    except (OSError, UnicodeDecodeError) as err:
        raise NNError(f"cannot read {path}: {err}", span) from None


def load_program(path: str) -> Program:
    names = dict(BUILTINS)
    for lib in sorted(STDLIB.glob("*.nn")):
        _add_layers(names, _load(str(lib), names, set(), None), allow_shadow=True)
    module = _load(path, names, set(), None)
    return Program(module, names)


def _load(path: str, names: dict, loading: set[str], span: Span | None) -> ast.Module:
    real = os.path.realpath(path)
    if real in loading:
        raise NNError(f"import cycle: {path} imports itself through its imports", span)
    module = parse(read_source(path, span), path)
    loading = loading | {real}
    for imp in module.imports:
        target = os.path.join(os.path.dirname(path), imp.path)
        imported = _load(target, names, loading, imp.span)
        _add_layers(names, imported, allow_shadow=True)
    _add_layers(names, module, allow_shadow=True)
    return module


def _add_layers(names: dict, module: ast.Module, allow_shadow: bool) -> None:
    seen: dict[str, ast.LayerDef] = {}
    for layer in module.layers:
        if layer.name in seen:
            raise NNError(f"layer `{layer.name}` is defined twice in this file", layer.span,
                          notes=[("first defined here", seen[layer.name].span)])
        seen[layer.name] = layer
        names[layer.name] = LayerTemplate(layer)
