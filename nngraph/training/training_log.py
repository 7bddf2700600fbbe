"""The training log: one record per epoch (epoch, loss, lr, seconds, and the held-out loss and
metrics when rows are held out), as JSON lines (`.jsonl`, one object per line) or CSV (`.csv`,
a header then one row per epoch), like Keras's CSVLogger. Each record is flushed when written, so
the log of a run that stops early, or crashes, holds every epoch finished."""
from __future__ import annotations

import contextlib
import csv
import json
import os

from nngraph.diagnostics import NNError

FORMATS = (".jsonl", ".csv")


def _format(path: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FORMATS:
        raise NNError(f"a training log is .jsonl or .csv, not `{suffix or path}`", hint="e.g. --log train.jsonl")
    return suffix


@contextlib.contextmanager
def training_log(log):
    """A function that writes one record: `log` itself if it is one, None for None, else a writer
    of the file `log` names (opened for the whole run)."""
    if log is None or callable(log):
        yield log
        return
    suffix = _format(log)
    try:
        f = open(log, "w", newline="")
    except OSError as err:
        raise NNError(f"cannot write the training log {log}: {err.strerror}") from None
    with f:
        if suffix == ".jsonl":
            def write(record: dict) -> None:
                f.write(json.dumps(record) + "\n")
                f.flush()
        else:
            writer = None

            def write(record: dict) -> None:
                nonlocal writer
                if writer is None:
                    writer = csv.DictWriter(f, fieldnames=list(record), extrasaction="ignore")
                    writer.writeheader()
                writer.writerow(record)
                f.flush()
        yield write


def read_log(path: str) -> list[dict]:
    """The records of a .jsonl or .csv training log, numbers as floats (epoch as int)."""
    suffix = _format(path)
    if not os.path.exists(path):
        raise NNError(f"no such file: {path}")
    records = []
    with open(path, newline="") as f:
        if suffix == ".jsonl":
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as err:
                    raise NNError(f"{path}:{number}: not a JSON record: {err}") from None
                if not isinstance(record, dict):
                    raise NNError(f"{path}:{number}: a record is a JSON object, got {type(record).__name__}")
                records.append(record)
        else:
            for number, row in enumerate(csv.DictReader(f), 2):
                try:
                    records.append({k: float(v) for k, v in row.items() if v not in ("", None)})
                except ValueError as err:
                    raise NNError(f"{path}:{number}: not a number: {err}") from None
    if not records or "epoch" not in records[0] or "loss" not in records[0]:
        raise NNError(f"{path} is not a training log (records with `epoch` and `loss`)",
                      hint="write one with `nngraph train MODEL --log LOG.jsonl`")
    return records
