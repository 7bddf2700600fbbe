"""A compiled model is safe to call from several threads at once: 8 threads running the same
executable (and the same Model.run) get exactly the results one thread gets."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import nngraph
from tests.helpers import model_feeds

MODELS = ["models/iris.nn", "models/rnn.nn", "models/transformer.nn"]


@pytest.mark.parametrize("path", MODELS)
def test_eight_threads_share_one_executable(path):
    model = nngraph.load(path)
    params = model.init(seed=0)
    run = model.inference()                     # compiled once, shared by every thread
    graph = model.inference_graph()
    feeds = [model_feeds(graph, n=3 + i % 3, seed=i) for i in range(16)]
    alone = [run(params, f) for f in feeds]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda f: run(params, f), feeds * 4))
    for i, got in enumerate(together):
        want = alone[i % len(feeds)]
        assert got.keys() == want.keys()
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=f"{path} case {i} output {name}")


def test_eight_threads_share_model_run():
    model = nngraph.load("models/iris.nn")
    params = model.init(seed=1)
    feeds = [{"x": np.random.default_rng(i).normal(size=(5, 4)).astype(np.float32)} for i in range(8)]
    alone = [model.run(params, f)["probs"] for f in feeds]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda f: model.run(params, f)["probs"], feeds * 4))
    for i, got in enumerate(together):
        np.testing.assert_array_equal(got, alone[i % len(feeds)])
