"""Write xo.npz and xo_shifted.npz: 6x6 black-and-white images of an X and an O.

The foundations' convolutional example. The training set (xo.npz) holds the X and O drawn
below, centred and moved one pixel diagonally (4 ways). The test set (xo_shifted.npz) holds the
same two letters moved one pixel straight up, down, left and right: positions the network never
saw, which it must still classify because its filters slide over the whole image and max
pooling keeps the strongest response of each 2x2 quarter wherever in the quarter it is. A
moved letter loses the row or column pushed off the edge; the one coming in is blank.

Arrays: `image` float32 [N, 1, 6, 6] (1 = ink, 0 = background), `label` int64 [N] (1 = X, 0 = O).
Deterministic, so the files can be re-made byte for byte:

    python models/data/make_xo.py
"""
from pathlib import Path

import numpy as np

X = """
#....#
.#..#.
..##..
..##..
.#..#.
#....#
"""

O = """
..##..
.#..#.
#....#
#....#
.#..#.
..##..
"""

LETTERS = {1: X, 0: O}                                   # label -> drawing
TRAIN_SHIFTS = [(0, 0), (-1, -1), (-1, 1), (1, -1), (1, 1)]   # (rows down, columns right)
TEST_SHIFTS = [(-1, 0), (1, 0), (0, -1), (0, 1)]


def drawing(art: str) -> np.ndarray:
    rows = art.strip().splitlines()
    return np.array([[c == "#" for c in row] for row in rows], dtype=np.float32)


def shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Move the ink by (dy, dx) pixels; what leaves the 6x6 frame is lost, what enters is blank."""
    out = np.zeros_like(image)
    h, w = image.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        image[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def letters(shifts) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for label, art in LETTERS.items():
        for dy, dx in shifts:
            images.append(shifted(drawing(art), dy, dx))
            labels.append(label)
    return np.stack(images)[:, None], np.array(labels, dtype=np.int64)


def main() -> None:
    folder = Path(__file__).parent
    for name, (image, label) in {"xo.npz": letters(TRAIN_SHIFTS), "xo_shifted.npz": letters(TEST_SHIFTS)}.items():
        np.savez_compressed(folder / name, image=image, label=label)
        print(f"wrote {folder / name}: {len(label)} images ({int(label.sum())} X, {int((label == 0).sum())} O)")


if __name__ == "__main__":
    main()
