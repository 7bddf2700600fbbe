"""Evaluation on many rows runs in chunks (a language model's activations on a whole corpus do not
fit in memory) and gives the figures of one run over every row, for losses that are means and
losses that are sums over the rows."""
from __future__ import annotations

import numpy as np
import pytest

import nngraph
from nngraph import runtime
from nngraph.training import loop


@pytest.mark.parametrize("path,elements", [("models/iris.nn", 128), ("models/squiggle.nn", 2),
                                           ("models/cnn_digits.nn", 16384)])
def test_chunked_evaluation_equals_one_run_over_every_row(monkeypatch, path, elements):
    model = nngraph.load(path)
    run = runtime.get("numpy").compile(loop.evaluation_graph(model.graph))
    data, params = model.load_data(), model.init(0)
    whole = run(data.arrays, params)
    monkeypatch.setattr(loop, "EVALUATION_ELEMENTS", elements)
    assert data.size > loop.chunk_rows(data) > 1      # the chunked path is the one under test
    out, loss = loop.run_in_chunks(model.graph, params, data, run)
    np.testing.assert_allclose(loss, float(whole[model.graph.loss]), rtol=1e-5)
    for name, value in whole.items():
        if name != model.graph.loss:
            np.testing.assert_allclose(out[name], value, rtol=1e-5, atol=1e-6)
