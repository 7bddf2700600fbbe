"""A tiny classifier written into a temporary folder for the training tests: 48 rows of two
features, three classes named by words (cat, dog, eel), a quarter held out."""
from __future__ import annotations

import numpy as np

MODEL = """model clf {
    input  x: [N, 2]
    target kind: [N] int
    scores = dense[3](x)
    output label = argmax(scores, axis = -1)
    loss = cross_entropy(scores, kind)
}

train clf {
    data = csv("d.csv", x = ["a", "b"], kind = "kind")
    optimizer = adam(lr = 0.05)
    epochs = 20
    batch = 8
    holdout = 0.25
    SETTINGS
}
"""
NAMES = ["cat", "dog", "eel"]


def write(folder, settings: str = "metrics = [accuracy]", rows: int = 48) -> str:
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 2.0], [2.0, 0.0], [-2.0, -2.0]])
    lines = ["a,b,kind"]
    for i in range(rows):
        k = i % 3
        a, b = centres[k] + rng.normal(0, 0.8, 2)
        lines.append(f"{a:.4f},{b:.4f},{NAMES[k]}")
    (folder / "d.csv").write_text("\n".join(lines) + "\n")
    path = folder / "clf.nn"
    path.write_text(MODEL.replace("SETTINGS", settings))
    return str(path)


def line_col(text: str, needle: str) -> tuple[int, int]:
    """1-based line and column of the first `needle` in `text`."""
    before = text[:text.index(needle)]
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
