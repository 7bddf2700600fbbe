"""The real-world ONNX suite's models, shared by tests/onnx/test_real_world.py and bench/onnx_import.py:
PyTorch exports made by tests/onnx/data/make_real_world.py (with PyTorch's reference values beside
them), and the onnx package's `light` zoo networks given seeded random weights."""
from __future__ import annotations

import math
import os

import numpy as np
import onnx
from onnx import numpy_helper

from nngraph.runtime.numpy.executor import Plan
from nngraph.training.config import Optimizer
from nngraph.training.step import new_name, train_step_graph

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")

# Every PyTorch export of the suite. Some need other parts of the importer than the basic ops:
# encoder_dynamic the import-time folding of shape subgraphs (Shape -> Gather -> Concat -> Reshape),
# up_block Resize and ConvTranspose, gpt_block Erf (exact GELU) and Trilu (the causal mask).
PYTORCH = ["mlp", "cnn", "lstm", "gru", "encoder_static", "encoder_dynamic", "gpt_block", "up_block"]

# The light zoo networks of the tests (inception_v1 needs LRN). Left to bench/onnx_import.py:
# bvlc_alexnet, zfnet512 and vgg19, 60M to 143M weights (seconds to make, import and run; vgg19's
# first dense layer, 1.03e8 weights, is over nngraph's default limit of 1e8 elements per constant,
# NNGRAPH_MAX_CONSTANT_ELEMENTS, which the benchmark raises).
LIGHT_ZOO = ["squeezenet", "shufflenet", "resnet50", "inception_v1", "inception_v2", "densenet121"]
LIGHT_LARGE = ["bvlc_alexnet", "zfnet512", "vgg19"]


def pytorch_export(name: str) -> tuple[str, dict[str, np.ndarray]]:
    """The file of a PyTorch export and its reference arrays (see make_real_world.py)."""
    with np.load(os.path.join(DATA, f"{name}.npz"), allow_pickle=False) as ref:
        return os.path.join(DATA, f"{name}.onnx"), dict(ref)


def sgd_losses(graph, weights: dict, feeds: dict, lr: float, steps: int) -> list[float]:
    """The loss before each of `steps` plain SGD steps on one batch, in the NumPy runtime."""
    graph.loss = "loss"
    plan = Plan(train_step_graph(graph, Optimizer("sgd", {"lr": lr}), 1))
    params, losses = dict(weights), []
    for _ in range(steps):
        out = plan.run(feeds, params)
        losses.append(float(out["loss"]))
        params = {k: out[new_name(k)] for k in params}
    return losses


def light_zoo(name: str, seed: int = 0) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """A light zoo network with random weights, and a random input. The light files hold no
    weights: every weight is a ConstantOfShape of 0.02 (outputs would be nearly constant), so each
    becomes an initializer of seeded random values: He-scaled for matrices and kernels, positive
    around 1 for batch norms' scales and variances, small for biases and means."""
    model = onnx.load(os.path.join(LIGHT, f"light_{name}.onnx"))
    graph, rng = model.graph, np.random.default_rng(seed)
    shapes = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    positive = {n.input[i] for n in graph.node if n.op_type == "BatchNormalization" for i in (1, 4)}
    kept, made = [], []
    for node in graph.node:
        if node.op_type != "ConstantOfShape" or node.input[0] not in shapes:
            kept.append(node)
            continue
        shape, out = tuple(int(d) for d in shapes[node.input[0]]), node.output[0]
        if out in positive:
            value = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            scale = math.sqrt(2 / math.prod(shape[1:])) if len(shape) >= 2 else 0.1
            value = rng.standard_normal(shape, dtype=np.float32) * np.float32(scale)
        made.append(numpy_helper.from_array(value, out))
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(made)
    used = {i for n in graph.node for i in n.input}
    unused = [t for t in graph.initializer if t.name not in used]
    for t in unused:
        graph.initializer.remove(t)
    inits = {t.name for t in graph.initializer}
    # IR version 3 lists the initializers among the inputs; from version 4 they need not be
    model.ir_version = max(model.ir_version, 4)
    for i in [i for i in graph.input if i.name in inits or i.name in {t.name for t in unused}]:
        graph.input.remove(i)
    # random weights saturate the final softmax: its input, the logits, is compared too
    outputs = {o.name for o in graph.output}
    for node in graph.node:
        if node.op_type == "Softmax" and node.output[0] in outputs:
            graph.output.append(onnx.helper.make_tensor_value_info(node.input[0], onnx.TensorProto.FLOAT, None))
    x = next(i for i in graph.input if i.name not in inits)
    shape = [d.dim_value for d in x.type.tensor_type.shape.dim]
    return model, {x.name: rng.normal(size=shape).astype(np.float32)}


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """The largest difference relative to the largest reference value."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))
