"""Write chars.npz: character-level training windows of corpus.txt for models/gpt.nn.

corpus.txt is the text that make_corpus.py generates from a tiny grammar (4,000 one-line
sentences, 86,811 characters: 24 letters, space and newline). Each character becomes its place
in the sorted list of the distinct characters (newline 0, space 1, then the letters), and the
text is cut into windows of 32 characters, each with the same window moved on by one character:
the next character at every position, which the model learns to predict.

Arrays: `text` [N, 32] int64, `next` [N, 32] int64 (N = 2,712 windows, one after another), and
`vocab` [26] int64, the Unicode code point of each id (to turn ids back into text).
Deterministic:

    python models/data/make_chars.py
"""
from pathlib import Path

import numpy as np

WINDOW = 32


def arrays() -> dict[str, np.ndarray]:
    text = Path(__file__).with_name("corpus.txt").read_text(encoding="utf-8")
    vocab = sorted(set(text))
    ids = np.array([vocab.index(c) for c in text], np.int64)
    count = (len(ids) - 1) // WINDOW
    starts = np.arange(count) * WINDOW
    window = starts[:, None] + np.arange(WINDOW)
    return {"text": ids[window], "next": ids[window + 1], "vocab": np.array([ord(c) for c in vocab], np.int64)}


def main() -> None:
    out = Path(__file__).with_name("chars.npz")
    data = arrays()
    np.savez_compressed(out, **data)
    print(f"wrote {out}: {len(data['text'])} windows of {WINDOW} characters, {len(data['vocab'])} distinct")


if __name__ == "__main__":
    main()
