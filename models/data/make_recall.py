"""Write recall.npz: sequences whose label is their FIRST symbol, followed by 39 random symbols.

A model must carry one symbol across 40 steps of distraction: the long-range task that shows why
LSTMs exist. Deterministic (seed 0), so the file can be re-made byte for byte:

    python models/data/make_recall.py
"""
from pathlib import Path

import numpy as np

SYMBOLS, LENGTH, COUNT = 4, 40, 1000


def main() -> None:
    rng = np.random.default_rng(0)
    symbols = rng.integers(0, SYMBOLS, size=(COUNT, LENGTH))
    sequence = np.eye(SYMBOLS, dtype=np.float32)[symbols]        # [N, T, symbols], one-hot
    first = symbols[:, 0].astype(np.int64)
    out = Path(__file__).with_name("recall.npz")
    np.savez_compressed(out, sequence=sequence, first=first)
    print(f"wrote {out}: {COUNT} sequences of {LENGTH} steps, {SYMBOLS} symbols")


if __name__ == "__main__":
    main()
