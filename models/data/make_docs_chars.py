"""Write docs_chars.npz: windows of docstrings.txt (made by make_corpus.py) for models/gpt_docs.nn.

Each character becomes its place in the sorted list of the corpus's distinct characters, and the
text is cut into windows of 288 characters, one after another, each with the same window moved
on by one character (the next character at every position, which the model learns to predict).
Arrays: `text` [N, 288] int64, `next` [N, 288] int64, `vocab` [96] int64 (the code point of each
id). Not stored in the repository (40 MB of int64); deterministic:

    python models/data/make_corpus.py && python models/data/make_docs_chars.py
"""
from pathlib import Path

import numpy as np

WINDOW = 288                 # a prompt of 32 characters and 256 new ones


def arrays() -> dict[str, np.ndarray]:
    text = Path(__file__).with_name("docstrings.txt").read_text(encoding="utf-8")
    vocab = sorted(set(text))
    index = np.zeros(128, np.int64)
    index[[ord(c) for c in vocab]] = np.arange(len(vocab))
    ids = index[np.frombuffer(text.encode("ascii"), np.uint8)]
    count = (len(ids) - 1) // WINDOW
    window = np.arange(count)[:, None] * WINDOW + np.arange(WINDOW)
    return {"text": ids[window], "next": ids[window + 1], "vocab": np.array([ord(c) for c in vocab], np.int64)}


def main() -> None:
    out = Path(__file__).with_name("docs_chars.npz")
    data = arrays()
    np.savez(out, **data)
    print(f"wrote {out}: {len(data['text'])} windows of {WINDOW} characters, {len(data['vocab'])} distinct")


if __name__ == "__main__":
    main()
