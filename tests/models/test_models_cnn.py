"""The convolutional models train from --seed 0 to their stated figures (models/cnn_*.nn), and a
small CNN written in the test learns to tell vertical bars from horizontal ones.

Times on 2 cores: cnn_xo trains in under 0.1 s, cnn_digits in about 4 s.
"""
import importlib.util

import numpy as np

import nngraph
from nngraph.training.data import Dataset
from tests.helpers import ROOT, load_source

MODELS = ROOT / "models"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, MODELS / "data" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_xo_data_is_what_the_script_draws():
    make_xo = _script("make_xo")
    for file, shifts in [("xo.npz", make_xo.TRAIN_SHIFTS), ("xo_shifted.npz", make_xo.TEST_SHIFTS)]:
        image, label = make_xo.letters(shifts)
        with np.load(MODELS / "data" / file) as stored:
            np.testing.assert_array_equal(stored["image"], image)
            np.testing.assert_array_equal(stored["label"], label)
    assert image.shape == (8, 1, 6, 6) and image.dtype == np.float32


def test_xo_classifies_every_image_including_shifts_it_never_saw():
    model = nngraph.load(str(MODELS / "cnn_xo.nn"))
    result = model.train(seed=0, progress=False)
    assert result.train.accuracy == 1.0, result.summary()
    with np.load(MODELS / "data" / "xo.npz") as train, np.load(MODELS / "data" / "xo_shifted.npz") as shifted:
        seen = {img.tobytes() for img in train["image"]}
        assert not any(img.tobytes() in seen for img in shifted["image"])      # truly unseen positions
        out = model.run(result.params, {"image": shifted["image"]})
        np.testing.assert_array_equal(out["label"], shifted["label"])          # all 8 correct
        assert out["probs"][np.arange(8), shifted["label"]].min() > 0.8       # 0.91 from seed 0
    np.testing.assert_allclose(out["probs"].sum(axis=1), 1, rtol=1e-6)


def test_digits_reach_97_percent_on_the_held_out_fifth():
    model = nngraph.load(str(MODELS / "cnn_digits.nn"))
    result = model.train(seed=0, progress=False)
    assert result.rows == (1438, 359)
    assert result.holdout.accuracy >= 0.97, result.summary()                  # 99.16% from seed 0
    assert "accuracy" in result.summary()
    with np.load(MODELS / "data" / "digits.npz") as data:
        images, digits = data["image"][:50], data["digit"][:50]
    out = model.run(result.params, {"image": images})
    assert out["probs"].shape == (50, 10) and out["digit"].shape == (50,)
    np.testing.assert_array_equal(out["digit"], out["probs"].argmax(axis=1))
    assert np.mean(out["digit"] == digits) >= 0.97


CNN = """
model cnn {
    input img: [N, 1, 6, 6]
    target label: [N] int
    h = conv2d[4, 3, padding = 1, act = relu](img)
    h = max_pool2d(h, 2)
    h = conv2d[4, 3, padding = "same", act = relu](h)
    output logits = dense[2](flatten(h))
    loss = cross_entropy(logits, label)
}
train cnn {
    optimizer = adam(lr = 0.01)
}
"""


def _bars(n, seed=0):
    """Images with one bright bar, vertical (class 0) or horizontal (class 1), at a random place."""
    rng = np.random.default_rng(seed)
    img = rng.normal(scale=0.1, size=(n, 1, 6, 6)).astype(np.float32)
    label = rng.integers(0, 2, n)
    where = rng.integers(0, 6, n)
    for k in range(n):
        if label[k]:
            img[k, 0, where[k], :] += 1
        else:
            img[k, 0, :, where[k]] += 1
    return img, label


def test_a_small_cnn_trains(tmp_path):
    model = load_source(tmp_path, CNN)
    img, label = _bars(64)
    result = model.train(data=Dataset({"img": img, "label": label}), epochs=30, batch=16, seed=0, progress=False)
    test_img, test_label = _bars(200, seed=1)
    logits = model.run(result.params, {"img": test_img})["logits"]
    assert (logits.argmax(-1) == test_label).mean() >= 0.95
