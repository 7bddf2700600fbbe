"""Data loading: CSV (columns matched to the model's inputs and targets by name) and NPZ."""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field

import numpy as np

from nngraph.diagnostics import NNError, Span, did_you_mean
from nngraph.ir import Graph, Value


@dataclass
class DataSource:
    kind: str                        # "csv" or "npz"
    path: str                        # resolved against the model file's folder
    columns: dict[str, list[str]] = field(default_factory=dict)   # input name -> CSV columns
    span: Span | None = None


@dataclass
class Dataset:
    arrays: dict[str, np.ndarray]
    classes: dict[str, list[str]] = field(default_factory=dict)   # for label columns given as words

    @property
    def size(self) -> int:
        return len(next(iter(self.arrays.values())))

    def take(self, rows) -> Dataset:
        return Dataset({k: v[rows] for k, v in self.arrays.items()}, self.classes)


def load(source: DataSource, graph: Graph) -> Dataset:
    if not os.path.exists(source.path):
        raise NNError(f"data file {source.path} does not exist", source.span)
    if source.kind == "npz":
        return _load_npz(source, graph)
    return _load_csv(source, graph)


def _load_npz(source: DataSource, graph: Graph) -> Dataset:
    try:
        with np.load(source.path, allow_pickle=False) as archive:
            stored = {k: archive[k] for k in archive.files}
    except (ValueError, OSError) as err:
        raise NNError(f"cannot read {source.path} as an .npz archive: {err}", source.span)
    arrays = {}
    for value in graph.inputs:
        key = (source.columns.get(value.name) or [value.name])[0]
        if key not in stored:
            raise NNError(f"{source.path} has no array `{key}` for {_what(graph, value)} `{value.name}`",
                          source.span, hint=did_you_mean(key, stored) or f"arrays: {', '.join(stored)}")
        arrays[value.name] = stored[key]
    return _checked(Dataset(arrays), source)


def _load_csv(source: DataSource, graph: Graph) -> Dataset:
    with open(source.path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise NNError(f"{source.path} is empty", source.span)
    header, body = [h.strip() for h in rows[0]], [r for r in rows[1:] if r]
    arrays, classes = {}, {}
    for value in graph.inputs:
        names = source.columns.get(value.name) or [value.name]
        missing = [n for n in names if n not in header]
        if missing:
            raise NNError(f"{source.path} has no column `{missing[0]}` for {_what(graph, value)} `{value.name}`",
                          source.span, hint=did_you_mean(missing[0], header) or
                          f"its columns are {', '.join(header)}; map them with `{value.name} = [\"col\", ...]`")
        cells = [[row[header.index(n)].strip() for n in names] for row in body]
        array, words = _convert(cells, value, source, names)
        if words:
            classes[value.name] = words
        arrays[value.name] = array.reshape(_row_shape(value, len(body), len(names), source))
    return _checked(Dataset(arrays, classes), source)


def _convert(cells, value: Value, source: DataSource, names) -> tuple[np.ndarray, list[str] | None]:
    try:
        return np.array(cells, dtype=np.float64).astype(value.dtype), None
    except ValueError:
        pass
    if not value.dtype.startswith("int"):
        raise NNError(f"column {', '.join(names)} of {source.path} holds words, but `{value.name}` is "
                      f"{value.dtype}", source.span, hint="declare a class label as `int`, e.g. `[N] int`")
    words = sorted({c for row in cells for c in row})      # class k is the k-th name in sorted order
    return np.array([[words.index(c) for c in row] for row in cells], dtype=value.dtype), words


def _row_shape(value: Value, rows: int, columns: int, source: DataSource) -> tuple[int, ...]:
    tail = value.shape[1:]
    if value.type.rank == 0 or not all(isinstance(d, int) for d in tail) or int(np.prod(tail)) != columns:
        raise NNError(f"`{value.name}` has type {value.type}, which {columns} CSV column(s) per row cannot fill",
                      source.span, hint="a CSV fills inputs shaped [N] or [N, k] from k columns")
    return (rows,) + tuple(tail)


def _checked(data: Dataset, source: DataSource) -> Dataset:
    sizes = {k: len(v) for k, v in data.arrays.items()}
    if len(set(sizes.values())) > 1:
        raise NNError(f"the arrays of {source.path} have different numbers of rows: {sizes}", source.span)
    return data


def _what(graph: Graph, value: Value) -> str:
    return "target" if value.name in graph.targets else "input"
