"""Data loading: CSV (columns matched to the model's inputs and targets by name), NPZ, and
skip-gram pairs made from a text corpus (word2vec)."""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field

import numpy as np

from nngraph.diagnostics import NNError, did_you_mean
from nngraph.files import load_npz  # sizes checked against the file before anything is allocated
from nngraph.ir.graph import Graph, Value
from nngraph.training.config import DataSource


@dataclass
class Dataset:
    arrays: dict[str, np.ndarray]
    classes: dict[str, list[str]] = field(default_factory=dict)   # for label columns given as words

    @property
    def size(self) -> int:
        return len(next(iter(self.arrays.values())))

    def take(self, rows) -> Dataset:
        return Dataset({k: v[rows] for k, v in self.arrays.items()}, self.classes)


def load(source: DataSource, graph: Graph, seed: int = 0) -> Dataset:
    """The rows for `graph`'s inputs and targets; `seed` draws a skip-gram source's negatives."""
    if not os.path.exists(source.path):
        raise NNError(f"data file {source.path} does not exist", source.span)
    if not os.path.isfile(source.path):     # a folder, or a device such as /dev/zero that never ends
        raise NNError(f"data file {source.path} is not a regular file", source.span)
    if source.kind == "npz":
        return _load_npz(source, graph)
    if source.kind == "skipgram":
        return _load_skipgram(source, graph, seed)
    return _load_csv(source, graph)


def _load_npz(source: DataSource, graph: Graph) -> Dataset:
    try:
        stored = load_npz(source.path)
    except NNError as err:
        raise NNError(err.message, source.span, err.hint) from None
    arrays = {}
    for value in graph.inputs:
        key = (source.columns.get(value.name) or [value.name])[0]
        if key not in stored:
            raise NNError(f"{source.path} has no array `{key}` for {_what(graph, value)} `{value.name}`",
                          source.span, hint=did_you_mean(key, stored) or f"arrays: {', '.join(stored)}")
        arrays[value.name] = stored[key]
        if stored[key].ndim == 0:
            raise NNError(f"{source.path}: array `{key}` is a scalar, but {_what(graph, value)} `{value.name}` "
                          "needs one row per example", source.span)
        _check_finite(stored[key], value, source, f"array `{key}`")
    return _checked_ranges(_checked(Dataset(arrays), source), graph, source)


MAX_CSV_BYTES = 2**31      # a larger CSV file (or a device such as /dev/zero) is refused, not read


def _read_csv(source: DataSource) -> list[list[str]]:
    """The rows of a CSV file; binary, ragged or oversized files are diagnostics naming the row."""
    if not os.path.isfile(source.path):
        raise NNError(f"data file {source.path} is not a regular file", source.span)
    if os.path.getsize(source.path) > MAX_CSV_BYTES:
        raise NNError(f"data file {source.path} is larger than {MAX_CSV_BYTES} bytes", source.span,
                      hint="store large data sets as .npz: npz(\"file.npz\")")
    rows = []
    try:
        with open(source.path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            for row in reader:
                if rows and row and len(row) != len(rows[0]):
                    raise NNError(f"{source.path}, line {reader.line_num}: {len(row)} fields, but the header has "
                                  f"{len(rows[0])}", source.span, hint="every row needs one value per column")
                if row or not rows:
                    rows.append(row)
    except UnicodeDecodeError as err:
        raise NNError(f"{source.path} is not a text CSV file (byte {err.start} is not UTF-8)", source.span) from None
    except csv.Error as err:
        raise NNError(f"{source.path} is not a valid CSV file: {err}", source.span) from None
    return rows


def _load_csv(source: DataSource, graph: Graph) -> Dataset:
    rows = _read_csv(source)
    if not rows or not any(rows[0]):
        raise NNError(f"{source.path} is empty", source.span)
    header, body = [h.strip() for h in rows[0]], rows[1:]
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
        _check_finite(array, value, source, "column", names)
        arrays[value.name] = array.reshape(_row_shape(value, len(body), len(names), source))
    return _checked_ranges(_checked(Dataset(arrays, classes), source), graph, source)


def _check_finite(array: np.ndarray, value: Value, source: DataSource, what: str, names=None) -> None:
    """NaN or infinity in the data is an error naming the row and column, not a NaN loss later."""
    if not np.issubdtype(array.dtype, np.floating):
        return
    bad = np.argwhere(~np.isfinite(array))
    if len(bad):
        row, *col = (int(i) for i in bad[0])
        where = f"column `{names[col[0]]}`" if names and col else what
        raise NNError(f"{source.path}: row {row + 1}, {where} (for `{value.name}`) is {array[tuple(bad[0])]}",
                      source.span, hint=f"{len(bad)} value(s) are NaN or infinite; clean the data first")


def _convert(cells, value: Value, source: DataSource, names) -> tuple[np.ndarray, list[str] | None]:
    try:
        numbers = np.array(cells, dtype=np.float64).reshape(len(cells), len(names))
    except ValueError:
        pass
    else:
        if value.dtype.startswith(("int", "uint")) or value.dtype == "bool":
            fractional = np.argwhere(~np.isfinite(numbers) | (numbers != np.round(numbers)))
            if len(fractional):
                row, col = (int(i) for i in fractional[0])
                raise NNError(f"{source.path}: row {row + 1}, column `{names[col]}` is {cells[row][col]}, but "
                              f"`{value.name}` is {value.dtype}", source.span)
            if len(numbers) and np.abs(numbers).max() >= 2.0**63:
                raise NNError(f"{source.path}: column {', '.join(names)} holds integers beyond int64", source.span)
        return numbers.astype(value.dtype), None
    if not value.dtype.startswith("int"):
        row, col = _first_word(cells)
        raise NNError(f"column {', '.join(names)} of {source.path} holds words, but `{value.name}` is "
                      f"{value.dtype}: row {row + 1}, column `{names[col]}` is {cells[row][col][:40]!r}", source.span,
                      hint="declare a class label as `int`, e.g. `[N] int`")
    words = sorted({c for row in cells for c in row})      # class k is the k-th name in sorted order
    return np.array([[words.index(c) for c in row] for row in cells], dtype=value.dtype), words


def _first_word(cells) -> tuple[int, int]:
    for r, row in enumerate(cells):
        for c, cell in enumerate(row):
            try:
                float(cell)
            except ValueError:
                return r, c
    return 0, 0


def _row_shape(value: Value, rows: int, columns: int, source: DataSource) -> tuple[int, ...]:
    tail = value.shape[1:]
    if value.type.rank == 0 or not all(isinstance(d, int) for d in tail) or int(np.prod(tail)) != columns:
        raise NNError(f"`{value.name}` has type {value.type}, which {columns} CSV column(s) per row cannot fill",
                      source.span, hint="a CSV fills inputs shaped [N] or [N, k] from k columns")
    return (rows,) + tuple(tail)


# ---------------------------------------------------------------- skip-gram pairs (word2vec)
SKIPGRAM_INPUTS = ("centre", "context", "negatives")


def vocabulary(source: DataSource) -> tuple[list[str], np.ndarray]:
    """The corpus's distinct words, most frequent first (ties alphabetical), and their counts.
    Words are whitespace-separated and lower-cased; a word's id is its place in this list."""
    if not os.path.isfile(source.path):
        raise NNError(f"data file {source.path} {'is not a regular file' if os.path.exists(source.path) else 'does not exist'}",
                      source.span)
    counts: dict[str, int] = {}
    with open(source.path, encoding="utf-8") as f:
        for line in f:
            for word in line.lower().split():
                counts[word] = counts.get(word, 0) + 1
    if not counts:
        raise NNError(f"{source.path} holds no words", source.span)
    words = sorted(counts, key=lambda w: (-counts[w], w))
    return words, np.array([counts[w] for w in words], dtype=np.int64)


def _load_skipgram(source: DataSource, graph: Graph, seed: int) -> Dataset:
    """Every (centre, context) pair of words at most `window` apart within a line of the corpus,
    each with `negatives` noise words drawn from the unigram distribution raised to 3/4 (Mikolov
    et al. 2013), redrawn where one equals the pair's real context. Deterministic given `seed`.
    The vocabulary is kept as `classes["centre"]` (word of each id)."""
    window, k = source.settings.get("window", 2), source.settings.get("negatives", 5)
    words, counts = vocabulary(source)
    _check_skipgram_inputs(source, graph, len(words), k)
    index = {w: i for i, w in enumerate(words)}
    centre, context = [], []
    with open(source.path, encoding="utf-8") as f:
        for line in f:
            ids = [index[w] for w in line.lower().split()]
            for i, c in enumerate(ids):
                for j in range(max(0, i - window), min(len(ids), i + window + 1)):
                    if j != i:
                        centre.append(c)
                        context.append(ids[j])
    if not centre:
        raise NNError(f"{source.path} has no line of two or more words, so no (centre, context) pairs",
                      source.span)
    centre_ids, context_ids = np.array(centre, np.int64), np.array(context, np.int64)
    noise = counts.astype(np.float64) ** 0.75
    noise /= noise.sum()
    rng = np.random.default_rng(seed)
    negatives = rng.choice(len(words), size=(len(centre), k), p=noise)
    for _ in range(100):                          # a real context is no noise word
        clash = negatives == context_ids[:, None]
        if not clash.any():
            break
        negatives[clash] = rng.choice(len(words), size=int(clash.sum()), p=noise)
    arrays = {"centre": centre_ids, "context": context_ids, "negatives": negatives}
    types = {v.name: v.dtype for v in graph.inputs}
    return Dataset({name: arrays[name].astype(types[name]) for name in SKIPGRAM_INPUTS},
                   {"centre": words})


def _check_skipgram_inputs(source: DataSource, graph: Graph, vocab: int, k: int) -> None:
    """The model takes exactly centre [N] int, context [N] int, negatives [N, k] int, and every
    table those ids index (a `gather` of a parameter) has one row per word of the corpus."""
    wanted = {"centre": "[N] int", "context": "[N] int", "negatives": f"[N, {k}] int"}
    names = [v.name for v in graph.inputs]
    for v in graph.inputs:
        if v.name not in wanted:
            raise NNError(f"a skipgram(...) source gives centre, context and negatives, but the model also takes "
                          f"{_what(graph, v)} `{v.name}`", source.span,
                          hint=did_you_mean(v.name, wanted) or "declare exactly: " +
                          ", ".join(f"input {n}: {t}" for n, t in wanted.items()))
    for name, want in wanted.items():
        v = next((v for v in graph.inputs if v.name == name), None)
        if v is None:
            raise NNError(f"a skipgram(...) source gives `{name}` ({want}), but the model has no input `{name}`",
                          source.span, hint=did_you_mean(name, names) or f"add `input {name}: {want}`")
        rank = 2 if name == "negatives" else 1
        if not v.dtype.startswith("int") or v.type.rank != rank or (rank == 2 and v.shape[1] != k):
            raise NNError(f"input `{name}` is {v.type}, but this skipgram(...) source gives {want}",
                          source.span, notes=[(f"`{name}` is declared here", v.span)],
                          hint=f"its second size is the number of noise words per pair: `negatives = {k}` here"
                          if rank == 2 and v.type.rank == 2 else None)
    fed = {v.uid: v.name for v in graph.inputs}
    params = {p.uid: p for p in graph.params}
    for node in graph.nodes:
        if node.op == "gather" and node.inputs[1].uid in fed and node.inputs[0].uid in params:
            table, axis = params[node.inputs[0].uid], node.attrs.get("axis", 0)
            if table.shape[axis] != vocab:
                raise NNError(f"{source.path} has {vocab} distinct words, but the table `{table.name}` that "
                              f"`{fed[node.inputs[1].uid]}` indexes has {table.shape[axis]} rows ({table.type})",
                              source.span, notes=[(f"`{table.name}` is declared here", table.span)],
                              hint=f"make the model's vocabulary size {vocab}, one row per word")


def _checked_ranges(data: Dataset, graph: Graph, source: DataSource) -> Dataset:
    """Class labels and ids must index what they index: `one_hot(label, depth)` needs 0 <= label < depth,
    a `gather` of a table needs 0 <= id < its rows. An out-of-range label is an error naming the row."""
    fed = {v.uid: v for v in graph.inputs}
    for node in graph.nodes:
        if node.op == "one_hot" and node.inputs[0].uid in fed:
            value, limit = fed[node.inputs[0].uid], node.attrs.get("depth")
        elif node.op == "gather" and len(node.inputs) > 1 and node.inputs[1].uid in fed:
            value = fed[node.inputs[1].uid]
            shape, axis = node.inputs[0].shape, node.attrs.get("axis", 0)
            limit = shape[axis] if -len(shape) <= axis < len(shape) else None
        else:
            continue
        array = data.arrays.get(value.name)
        if not isinstance(limit, int) or array is None or not array.size or not np.issubdtype(array.dtype, np.integer):
            continue
        bad = np.argwhere((array < 0) | (array >= limit))
        if len(bad):
            at = tuple(int(i) for i in bad[0])
            raise NNError(f"{source.path}: row {at[0] + 1} of `{value.name}` is {array[at]}, outside 0..{limit - 1}",
                          source.span, notes=[(f"`{value.name}` indexes {limit} classes or rows here", node.span)],
                          hint=f"{len(bad)} value(s) are out of range")
    return data


def check_holdout(size: int, holdout: float, span=None) -> int:
    """How many rows a holdout fraction keeps out of training; an error if no training row is left."""
    if not holdout:
        return 0
    kept = max(1, round(holdout * size))
    if kept >= size:
        raise NNError(f"holdout = {holdout:g} of {size} row(s) keeps {kept} for evaluation and leaves none for "
                      "training", span, hint="use more data or a smaller holdout")
    return kept


def _checked(data: Dataset, source: DataSource) -> Dataset:
    sizes = {k: len(v) for k, v in data.arrays.items()}
    if len(set(sizes.values())) > 1:
        raise NNError(f"the arrays of {source.path} have different numbers of rows: {sizes}", source.span)
    return data


def _what(graph: Graph, value: Value) -> str:
    return "target" if value.name in graph.targets else "input"
