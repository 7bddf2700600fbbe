"""`run --input`: arrays for a model's inputs from .npy, .csv and .npz files.

    --input x=flowers.npy          the array
    --input x=flowers.csv          numbers, one row per example; a header row is optional, and when the
                                   train block maps `x` to named columns those columns are taken
    --input x=batch.npz[:ARRAY]    the array ARRAY (default: the one named x, or the only one)
    --input batch.npz              every input the archive has an array for
"""
from __future__ import annotations

import csv
import os

import numpy as np

from nngraph.api import Model
from nngraph.diagnostics import NNError, did_you_mean
from nngraph.files import load_npy, load_npz
from nngraph.ir.graph import Value


def parse_inputs(model: Model, specs: list[str], outputs: list[str] | None = None) -> dict[str, np.ndarray]:
    declared = {v.name: v for v in model.graph.inputs if v.name not in model.graph.targets}
    needed = [v.name for v in model.inference_graph(outputs).inputs]
    inputs = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep and spec.lower().endswith(".npz"):
            inputs |= _whole_npz(spec, declared, needed)
            continue
        if not sep or not name or not path:
            raise NNError(f"--input takes NAME=FILE (.npy, .csv or .npz) or FILE.npz, got `{spec}`")
        if name not in declared:
            raise NNError(f"model `{model.name}` has no input `{name}`",
                          hint=did_you_mean(name, declared) or f"its inputs: {', '.join(declared)}")
        inputs[name] = read_input(declared[name], path, _columns(model, name))
    missing = [n for n in needed if n not in inputs]
    if missing:
        raise NNError(f"the outputs need input `{missing[0]}` too", hint=f"add --input {missing[0]}=FILE")
    return inputs


def read_input(value: Value, path: str, columns: list[str] | None = None) -> np.ndarray:
    path, _, member = path.partition(":") if path.lower().split(":")[0].endswith(".npz") else (path, "", "")
    if not os.path.exists(path):
        raise NNError(f"--input {value.name}: no such file: {path}")
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".npy":
        return load_npy(path, f"--input {value.name}")     # its header checked before anything is allocated
    if suffix == ".npz":
        stored = _npz(path)
        key = member or (value.name if value.name in stored else next(iter(stored)) if len(stored) == 1 else None)
        if key not in stored:
            raise NNError(f"--input {value.name}: {path} has no array `{key or value.name}`",
                          hint=did_you_mean(key or value.name, stored) or f"its arrays: {', '.join(stored)}; "
                          f"choose one with {value.name}={path}:ARRAY")
        return stored[key]
    if suffix == ".csv":
        return _csv(value, path, columns)
    raise NNError(f"--input {value.name}: {path} is not a .npy, .csv or .npz file")


def _whole_npz(path: str, declared: dict, needed: list[str]) -> dict[str, np.ndarray]:
    if not os.path.exists(path):
        raise NNError(f"--input: no such file: {path}")
    stored = _npz(path)
    found = {k: v for k, v in stored.items() if k in declared}
    if not found:
        raise NNError(f"--input {path}: none of its arrays ({', '.join(stored)}) is named like an input",
                      hint=f"the inputs: {', '.join(needed)}; or give NAME={path}:ARRAY")
    return found


def _npz(path: str) -> dict[str, np.ndarray]:
    return load_npz(path)     # sizes checked against the file before anything is allocated


def _csv(value: Value, path: str, columns: list[str] | None) -> np.ndarray:
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r]
    if not rows:
        raise NNError(f"--input {value.name}: {path} is empty")
    header = None
    if not _numeric(rows[0]):
        header, rows = [h.strip() for h in rows[0]], rows[1:]
    if header and columns and all(c in header for c in columns):
        rows = [[r[header.index(c)] for c in columns] for r in rows]
    elif header and value.name in header:
        rows = [[r[header.index(value.name)]] for r in rows]
    for number, row in enumerate(rows, 2 if header else 1):
        if not _numeric(row):
            bad = next(i for i, c in enumerate(row) if not _numeric([c]))
            raise NNError(f"--input {value.name}: {path} row {number}, column {bad + 1}: `{row[bad].strip()}` is not a number")
    array = np.array([[float(c) for c in r] for r in rows], dtype=np.float64)
    tail = tuple(value.shape[1:])
    width = array.shape[1] if array.ndim == 2 else 0
    if not all(isinstance(d, int) for d in tail) or int(np.prod(tail)) != width:
        raise NNError(f"--input {value.name}: {path} has {width} column(s) per row, but `{value.name}` is {value.type}")
    return array.reshape((len(array),) + tail).astype(value.dtype)


def _numeric(row: list[str]) -> bool:
    try:
        [float(c) for c in row]
        return True
    except ValueError:
        return False


def _columns(model: Model, name: str) -> list[str] | None:
    config = model.train_config
    return config.data.columns.get(name) if config and config.data and config.data.kind == "csv" else None
