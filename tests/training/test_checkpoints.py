"""Checkpoints and exact resume: 10 + 10 epochs give the weights of 20 (float64 identical,
float32 within 1e-6), with Adam's state and the shuffling RNG carried over; no pickle."""
import json

import numpy as np
import pytest

import nngraph
from nngraph.diagnostics import NNError
from nngraph.files import META_KEY
from tests.training import tiny


@pytest.mark.parametrize("dtype,tolerance", [("float64", 0.0), ("float32", 1e-6)])
def test_ten_and_ten_epochs_are_twenty(tmp_path, dtype, tolerance):
    model = nngraph.load(tiny.write(tmp_path), dtype=dtype)
    whole = model.train(epochs=20, progress=False)
    first = model.train(epochs=10, progress=False, checkpoint=str(tmp_path / "ck"), checkpoint_every=5)
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["epoch-00005.npz", "epoch-00010.npz"]
    resumed = model.train(epochs=20, progress=False, resume=str(tmp_path / "ck" / "epoch-00010.npz"))
    assert len(first.history) == 10 and len(resumed.history) == 20
    for name in whole.params:
        assert resumed.params[name].dtype == np.dtype(dtype)
        np.testing.assert_allclose(resumed.params[name], whole.params[name], rtol=0, atol=tolerance)
    assert resumed.history == pytest.approx(whole.history, abs=tolerance or 1e-12)
    if tolerance == 0.0:
        assert all(np.array_equal(resumed.params[k], whole.params[k]) for k in whole.params)


def test_resuming_a_fresh_run_differs_from_restarting(tmp_path):
    """The optimizer state matters: restarting from the 10-epoch weights without it does not give 20."""
    model = nngraph.load(tiny.write(tmp_path), dtype="float64")
    whole = model.train(epochs=20, progress=False)
    first = model.train(epochs=10, progress=False)
    restarted = model.train(first.params, epochs=10, progress=False)
    assert not all(np.array_equal(restarted.params[k], whole.params[k]) for k in whole.params)


def test_a_checkpoint_holds_params_state_epoch_and_rng_without_pickle(tmp_path):
    model = nngraph.load(tiny.write(tmp_path))
    model.train(epochs=2, progress=False, checkpoint=str(tmp_path / "ck"))
    with np.load(tmp_path / "ck" / "epoch-00002.npz", allow_pickle=False) as archive:
        names = set(archive.files)
        meta = json.loads(archive[META_KEY].tobytes())
    assert {"param:scores.w", "param:scores.b", "state:step", "state:m:scores.w", "state:v:scores.b"} <= names
    assert meta["kind"] == "checkpoint" and meta["epoch"] == 2 and meta["model"] == "clf"
    assert meta["rng"]["bit_generator"] == "PCG64" and len(meta["history"]) == 2


def test_resume_from_a_folder_takes_the_newest(tmp_path):
    model = nngraph.load(tiny.write(tmp_path))
    model.train(epochs=4, progress=False, checkpoint=str(tmp_path / "ck"), checkpoint_every=2)
    resumed = model.train(epochs=5, progress=False, resume=str(tmp_path / "ck"))
    assert len(resumed.history) == 5 and len(resumed.log) == 5


def test_resuming_with_another_optimizer_is_an_error(tmp_path):
    model = nngraph.load(tiny.write(tmp_path))
    model.train(epochs=2, progress=False, checkpoint=str(tmp_path / "ck"))
    sgd = nngraph.load(tiny.write(tmp_path).replace("clf.nn", "clf.nn"))
    sgd.train_config.optimizer.kind = "sgd"
    with pytest.raises(NNError, match="does not fit this model's optimizer state: unexpected"):
        sgd.train(epochs=4, progress=False, resume=str(tmp_path / "ck"))


def test_a_weights_file_is_not_a_checkpoint(tmp_path):
    model = nngraph.load(tiny.write(tmp_path))
    from nngraph.files import save_weights
    save_weights(str(tmp_path / "w.npz"), model.init(), {"model": "clf"})
    with pytest.raises(NNError, match="is not a checkpoint"):
        model.train(epochs=2, progress=False, resume=str(tmp_path / "w.npz"))


def test_resuming_past_the_epochs_asked_for_is_an_error(tmp_path):
    model = nngraph.load(tiny.write(tmp_path))
    model.train(epochs=4, progress=False, checkpoint=str(tmp_path / "ck"))
    with pytest.raises(NNError, match="is at epoch 4, past the 3 epochs asked for") as err:
        model.train(epochs=3, progress=False, resume=str(tmp_path / "ck"))
    assert "--epochs 8" in err.value.hint
