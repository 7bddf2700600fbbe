"""Backends: one folder each, behind one small protocol. A backend compiles a graph once into an
executable, then runs it many times:

    backend = nngraph.runtime.get("numpy")
    run = backend.compile(graph)                   # checks every op is supported
    outputs = run(feeds, params)                   # {output name: array}

A backend is found by name: `get("jax")` imports `nngraph.runtime.jax` and takes its `BACKEND`.
A new backend is a new folder here holding a module-level `BACKEND`; nothing in ops/, passes/,
dsl/ or onnx/ changes. Backends depend on nngraph.ir and nngraph.ops only; nngraph.api chooses one.
"""
from __future__ import annotations

import importlib
from typing import Protocol

import numpy as np

from nngraph.diagnostics import NNError
from nngraph.ir.graph import Graph

# name -> the pip extra that brings what the backend needs (None: nothing beyond nngraph)
KNOWN = {"numpy": None, "jax": "jax", "onnxruntime": "onnxruntime"}


class Executable(Protocol):
    """A compiled graph: feeds and params by name in, the named outputs out (all of them by default)."""

    def __call__(self, feeds: dict[str, np.ndarray], params: dict[str, np.ndarray] | None = None,
                 outputs: list[str] | None = None) -> dict[str, np.ndarray]: ...


class Backend(Protocol):
    name: str

    def supports(self, op: str) -> bool:
        """Whether the backend has a kernel (or lowering) for the op."""

    def compile(self, graph: Graph) -> Executable:
        """Prepare `graph` once; an op the backend lacks is an NNError naming it and its .nn line."""


def get(name: str, **options) -> Backend:
    """The backend called `name`, made with `options` if any (e.g. `devices=4` for jax,
    `threads=1` for onnxruntime); an unknown name or a missing extra is an NNError with a hint."""
    if name not in KNOWN:
        raise NNError(f"no backend `{name}`", hint=f"backends: {', '.join(KNOWN)}")
    try:
        module = importlib.import_module(f"nngraph.runtime.{name}")
    except ImportError as err:
        extra = KNOWN[name]
        raise NNError(f"the `{name}` backend needs a package that is not installed ({err.name or err})",
                      hint=f"pip install 'nngraph[{extra}]'" if extra else None) from None
    if not options:
        return module.BACKEND
    try:
        return type(module.BACKEND)(**options)
    except TypeError as err:
        raise NNError(f"the `{name}` backend takes no such option: {err}") from None


def available() -> list[str]:
    """The backends whose packages are installed."""
    names = []
    for name in KNOWN:
        try:
            get(name)
        except NNError:
            continue
        names.append(name)
    return names


def unsupported(backend: Backend, graph: Graph) -> list:
    """The nodes (scan bodies included) whose op `backend` lacks, for a diagnostic."""
    missing = []
    for node in graph.nodes:
        if not backend.supports(node.op):
            missing.append(node)
        for attr in node.attrs.values():
            if isinstance(attr, Graph):
                missing += unsupported(backend, attr)
    return missing


def require_support(backend: Backend, graph: Graph) -> None:
    """An NNError at the first unsupported op's .nn line, listing every unsupported op."""
    missing = unsupported(backend, graph)
    if missing:
        ops = sorted({n.op for n in missing})
        raise NNError(f"the `{backend.name}` backend has no kernel for {', '.join(f'`{o}`' for o in ops)}",
                      missing[0].span, hint="run this model with --backend numpy")
