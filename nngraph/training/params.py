"""Parameter initialization from a seed, by each parameter's declared initializer."""
from __future__ import annotations

import math

import numpy as np

from nngraph.ir.graph import Graph


def fans(shape) -> tuple[int, int]:
    """Fan-in and fan-out: [in, out] for a matrix, [out, in, *kernel] for a convolution filter."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def init_params(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    """One array per parameter. Each parameter draws from its own stream seeded by (seed, name),
    so adding a parameter to a model does not change how the others start."""
    params = {}
    for p in graph.params:
        shape = tuple(p.shape)
        init = graph.param_init[p.name]
        rng = np.random.default_rng([seed, *p.name.encode()])
        a = init.args
        fan_in, fan_out = fans(shape)
        if init.kind == "constant":
            value = np.broadcast_to(np.asarray(a.get("value", 0.0)), shape)
        elif init.kind == "normal":
            value = rng.normal(a.get("mean", 0.0), a.get("std", 1.0), shape)
        elif init.kind == "uniform":
            value = rng.uniform(a.get("low", -1.0), a.get("high", 1.0), shape)
        elif init.kind == "value":        # an exact array, e.g. weights imported from an ONNX initializer
            value = np.asarray(a["value"])
        elif init.kind == "glorot":       # Glorot & Bengio 2010, uniform variant
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            value = rng.uniform(-limit, limit, shape)
        elif init.kind == "he":           # He et al. 2015, for ReLU layers
            value = rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)
        else:
            raise ValueError(f"unknown initializer {init.kind}")
        params[p.name] = np.array(value, dtype=p.dtype)
    return params
