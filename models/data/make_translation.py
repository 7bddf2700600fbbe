"""Write translation.npz: the foundations' toy English -> Spanish translation.

    "let's go" -> "vamos"        "to go" -> "ir"

Each side has its own vocabulary with <EOS> (id 0), which ends every sentence and also starts the
decoder (the decoder's first input is <EOS>, as in the foundations):

    English: <EOS> 0, let's 1, to 2, go 3          Spanish: <EOS> 0, ir 1, vamos 2

Arrays: `english` [2, 3] (the sentence and its <EOS>), `spanish_in` [2, 2] (<EOS> then the
translation, the decoder's teacher-forced inputs) and `spanish` [2, 2] (the translation then
<EOS>, what the decoder must say). Deterministic:

    python models/data/make_translation.py
"""
from pathlib import Path

import numpy as np

ENGLISH = ["<EOS>", "let's", "to", "go"]
SPANISH = ["<EOS>", "ir", "vamos"]
PAIRS = [("let's go", "vamos"), ("to go", "ir")]


def arrays() -> dict[str, np.ndarray]:
    english = [[ENGLISH.index(w) for w in src.split()] + [0] for src, _ in PAIRS]
    spanish = [[SPANISH.index(w) for w in dst.split()] + [0] for _, dst in PAIRS]
    spanish_in = [[0] + s[:-1] for s in spanish]
    return {"english": np.array(english, np.int64), "spanish_in": np.array(spanish_in, np.int64),
            "spanish": np.array(spanish, np.int64)}


def main() -> None:
    out = Path(__file__).with_name("translation.npz")
    np.savez_compressed(out, **arrays())
    print(f"wrote {out}: {len(PAIRS)} sentence pairs")


if __name__ == "__main__":
    main()
