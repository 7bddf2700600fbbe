"""The language's 1-d and 3-d convolution and pooling, pooling dilations and `upsample`: the shapes
they give, the values against direct NumPy definitions, and their diagnostics."""
from __future__ import annotations

import numpy as np
import pytest

from nngraph.diagnostics import NNError
from tests.helpers import load_source

MODEL = """
model m {
    input seq: [N, 2, 9]
    input vol: [N, 2, 4, 6, 6]
    input img: [N, 3, 4, 5]
    param w1: [4, 2, 3] ~ he
    param w3: [3, 2, 2, 3, 3] ~ he
    output s = conv(seq, w1, stride = 2, padding = "same")
    output sp = max_pool1d(seq, 3, stride = 2, dilation = 2)
    output v = conv(vol, w3, padding = 1)
    output vp = avg_pool3d(vol, 2)
    output vm = max_pool3d(vol, [1, 2, 2], dilation = [1, 2, 2])
    output near = upsample(img, 2)
    output lin = upsample(img, [2, 3], mode = "linear", align_corners = 1)
}
"""


def test_shapes_and_values(tmp_path):
    model = load_source(tmp_path, MODEL)
    types = {name: str(v.type) for name, v in model.graph.outputs.items()}
    assert types == {"s": "float32[N, 4, 5]", "sp": "float32[N, 2, 3]", "v": "float32[N, 3, 5, 6, 6]",
                     "vp": "float32[N, 2, 2, 3, 3]", "vm": "float32[N, 2, 4, 2, 2]", "near": "float32[N, 3, 8, 10]",
                     "lin": "float32[N, 3, 8, 15]"}
    rng = np.random.default_rng(0)
    seq, vol, img = (rng.normal(size=s).astype(np.float32) for s in ((2, 2, 9), (2, 2, 4, 6, 6), (2, 3, 4, 5)))
    out = model.run(model.init(0), {"seq": seq, "vol": vol, "img": img})
    np.testing.assert_array_equal(out["sp"], np.stack([seq[:, :, i:i + 5:2].max(axis=-1) for i in (0, 2, 4)], -1))
    np.testing.assert_allclose(out["vp"], vol.reshape(2, 2, 2, 2, 3, 2, 3, 2).mean(axis=(3, 5, 7)), rtol=1e-6)
    # windows of rows 2p + {0, 2} and columns 2q + {0, 2}: offset (i, j) reads rows i, i + 2 and columns j, j + 2
    np.testing.assert_array_equal(out["vm"], np.maximum.reduce(
        [vol[:, :, :, i:i + 3:2, j:j + 3:2] for i in (0, 2) for j in (0, 2)]))
    np.testing.assert_array_equal(out["near"], img.repeat(2, axis=2).repeat(2, axis=3))
    # align_corners: the corners of the output are the input's corners, a straight line between
    np.testing.assert_allclose(out["lin"][:, :, [0, -1]][:, :, :, [0, -1]], img[:, :, [0, -1]][:, :, :, [0, -1]],
                               rtol=1e-6)
    np.testing.assert_allclose(out["lin"][:, :, 0, 1], img[:, :, 0, 0] + (img[:, :, 0, 1] - img[:, :, 0, 0]) * 4 / 14,
                               rtol=1e-5)


@pytest.mark.parametrize("line,message", [
    ("output y = max_pool1d(img, 2)", "`max_pool1d` needs a batch of sequences of shape [N, C, L], got float32[N, 3, 4, 5]"),
    ("output y = conv(seq, w3)", "`conv` needs filters of shape [out_channels, in_channels / groups, kl], got "
                                 "float32[3, 2, 2, 3, 3]"),
    ("output y = upsample(img, 2, mode = \"cubic\")", "argument `mode` of `upsample` is \"nearest\" or \"linear\", "
                                                      "got the str 'cubic'"),
    ("output y = max_pool3d(vol, 2, padding = [1, 1])", "argument `padding` of `max_pool3d` must be an integer or 3 or 6 "
                                                        "integers, got the list [1, 1]"),
])
def test_diagnostics(tmp_path, line, message):
    source = MODEL.replace("    output lin", f"    {line}\n    output lin")
    with pytest.raises(NNError) as err:
        load_source(tmp_path, source)
    assert message in err.value.message
