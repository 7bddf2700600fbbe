"""Loading .nn files: parsing, following imports, and assembling the names a model can use
(builtins, then the standard library, then imported layers, then the file's own layers)."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from nngraph.diagnostics import NNError, Span
from nngraph.dsl import ast
from nngraph.dsl.builtins import BUILTINS
from nngraph.dsl.parser import parse
from nngraph.dsl.values import LayerTemplate

STDLIB = Path(__file__).parent / "stdlib"
MAX_SOURCE_BYTES = 16 * 2**20       # a .nn file larger than this is refused, not read: reads are bounded
ALLOW_PATH_ENV = "NNGRAPH_ALLOW_PATH"
_allowed_by_caller: list[str] = []  # set by `nngraph --allow-path DIR` for the duration of a command


def allow_paths(folders: list[str] | None) -> None:
    """Let models read imports and data files under these folders too (None: only their own tree)."""
    _allowed_by_caller[:] = [os.path.realpath(f) for f in folders or []]


def check_inside(path: str, model_dir: str, span: Span | None, what: str) -> None:
    """Imports and data files resolve inside the model file's folder tree, or a folder the user allowed
    (`--allow-path DIR` or NNGRAPH_ALLOW_PATH): a model from elsewhere cannot read any file on the machine."""
    real = os.path.realpath(path)
    env = [os.path.realpath(f) for f in os.environ.get(ALLOW_PATH_ENV, "").split(os.pathsep) if f]
    roots = [os.path.realpath(model_dir or ".")] + _allowed_by_caller + env
    if not any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots):
        raise NNError(f"the {what} `{path}` is outside the model's folder `{model_dir or '.'}`", span,
                      hint="allow its folder with `nngraph --allow-path DIR ...` or the environment "
                           f"variable {ALLOW_PATH_ENV}")


@dataclass
class Program:
    module: ast.Module                         # the file that was asked for
    names: dict = field(default_factory=dict)  # every global name: builtins and layer templates


def read_source(path: str, span: Span | None = None) -> str:
    """The text of a .nn file, read at most MAX_SOURCE_BYTES: `/dev/zero` or a huge file stop with a
    diagnostic instead of filling the memory."""
    try:
        if os.path.isdir(path):
            raise NNError(f"{path} is a folder, not a .nn file", span)
        with open(path, "rb") as f:
            data = f.read(MAX_SOURCE_BYTES + 1)
        if len(data) > MAX_SOURCE_BYTES:
            raise NNError(f"{path} is larger than {MAX_SOURCE_BYTES // 2**20} MiB: not a .nn model file", span)
        return data.decode("utf-8")
    except FileNotFoundError:
        raise NNError(f"no such file: {path}", span) from None
    except UnicodeDecodeError as err:
        raise NNError(f"cannot read {path}: not UTF-8 text (byte {err.start})", span) from None
    except OSError as err:
        raise NNError(f"cannot read {path}: {err.strerror or err}", span) from None


def load_program(path: str) -> Program:
    names = dict(_standard_names())
    module = _load(path, names, set(), None, os.path.dirname(path))
    return Program(module, names)


_stdlib_lock = threading.Lock()
_stdlib_cache: dict[tuple, dict] = {}


def _standard_names() -> dict:
    """The builtins and the standard library's layers, built once per process (every load used to
    read the library's files and rebuild its names). Keyed by each library file's size and
    modification time, so an edited library is read again. Callers copy the dict; the layer
    templates in it are never changed by elaboration."""
    libs = sorted(STDLIB.glob("*.nn"))
    key = tuple((lib.name, stat.st_mtime_ns, stat.st_size) for lib in libs for stat in [lib.stat()])
    with _stdlib_lock:
        if key not in _stdlib_cache:
            names = dict(BUILTINS)
            for lib in libs:
                _add_layers(names, _load(str(lib), names, set(), None, None), allow_shadow=True)
            _stdlib_cache.clear()
            _stdlib_cache[key] = names
        return _stdlib_cache[key]


@lru_cache(maxsize=32)
def _parse_cached(text: str, path: str) -> ast.Module:
    """A file of several models is loaded once per model (and a library file whose mtime changed
    may have the same text): the same text parses to the same tree, which elaboration only reads."""
    return parse(text, path)


def _parse_file(path: str, span: Span | None) -> ast.Module:
    text = read_source(path, span)
    if path.endswith(".nn"):
        return _parse_cached(text, path)
    try:
        return parse(text, path)
    except NNError as err:   # not a model file: say where, but never print its contents
        at = f" (line {err.span.line}, column {err.span.column})" if err.span else ""
        raise NNError(f"{path} is not a .nn model file: it does not parse{at}", span,
                      hint="model files end in .nn; its contents are not shown") from None


def _load(path: str, names: dict, loading: set[str], span: Span | None, model_dir: str | None) -> ast.Module:
    real = os.path.realpath(path)
    if real in loading:
        raise NNError(f"import cycle: {path} imports itself through its imports", span)
    module = _parse_file(path, span)
    loading = loading | {real}
    for imp in module.imports:
        target = os.path.join(os.path.dirname(path), imp.path)
        if model_dir is not None:
            check_inside(target, model_dir, imp.span, "import")
        if not imp.path.endswith(".nn"):
            raise NNError(f"`import` takes a .nn file, got `{imp.path}`", imp.span)
        imported = _load(target, names, loading, imp.span, model_dir)
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
