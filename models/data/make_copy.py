"""Write copy.npz: the sequence-copying task for the seq2seq, attention and transformer models.

Each example is a sequence of 10 to 20 tokens drawn uniformly from 10 symbols, which the model must
repeat and then end with <EOS>. Token ids are shared by both sides:

    <PAD> 0 (fills the unused end of a row), <BOS> 1 (starts the decoder), <EOS> 2, symbols 3..12

Arrays (N = 3000 rows):
    source      [N, 20]  the sequence, then <PAD>s
    target_in   [N, 21]  <BOS>, the sequence, then <PAD>s    (the decoder's teacher-forced inputs)
    target_out  [N, 21]  the sequence, <EOS>, then <PAD>s    (what the decoder must say)

An encoder-decoder without attention has to squeeze up to 20 symbols into one state vector;
with attention the decoder can look each one up. Deterministic (seed 0):

    python models/data/make_copy.py
"""
from pathlib import Path

import numpy as np

PAD, BOS, EOS, FIRST = 0, 1, 2, 3
SYMBOLS, SHORTEST, LONGEST, COUNT = 10, 10, 20, 3000
VOCAB = FIRST + SYMBOLS


def arrays(count: int = COUNT, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    source = np.full((count, LONGEST), PAD, np.int64)
    target_in = np.full((count, LONGEST + 1), PAD, np.int64)
    target_out = np.full((count, LONGEST + 1), PAD, np.int64)
    for row in range(count):
        length = rng.integers(SHORTEST, LONGEST + 1)
        tokens = rng.integers(FIRST, FIRST + SYMBOLS, size=length)
        source[row, :length] = tokens
        target_in[row, 0] = BOS
        target_in[row, 1:length + 1] = tokens
        target_out[row, :length] = tokens
        target_out[row, length] = EOS
    return {"source": source, "target_in": target_in, "target_out": target_out}


def main() -> None:
    out = Path(__file__).with_name("copy.npz")
    np.savez_compressed(out, **arrays())
    print(f"wrote {out}: {COUNT} sequences of {SHORTEST} to {LONGEST} of {SYMBOLS} symbols")


if __name__ == "__main__":
    main()
