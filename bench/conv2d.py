"""conv2d forward, and forward + backward, in the NumPy runtime (a Plan of the op, and of the
gradient graph autodiff builds for loss = sum(conv2d(x, w) * r)), against a hand-written NumPy
reference (sliding-window view + tensordot, col2im over the kernel offsets) and PyTorch when it
is installed, all measured in the same run. Prints a README table of times and ratios.

    python bench/conv2d.py [--repeat 30]
"""
import argparse
import os
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from nngraph.autodiff import grad
from nngraph.ir import Graph, TensorType
from nngraph.runtime.numpy.executor import Plan

try:
    import torch
except ImportError:            # the comparison with PyTorch is optional
    torch = None

# (batch, in channels, size, out channels, kernel, stride, padding)
SETTINGS = [
    (32, 16, 32, 32, 3, 1, 1),
    (64, 3, 32, 16, 5, 1, 2),
    (32, 32, 16, 64, 3, 2, 1),
]


# ---------------------------------------------------------------- hand-written NumPy reference
def reference_forward(x, w, stride, pad):
    kh, kw = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]   # [N, C, Ho, Wo, kh, kw]
    return np.tensordot(windows, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2), windows


def reference_backward(x, w, g, windows, stride, pad):
    kh, kw = w.shape[2:]
    dw = np.tensordot(g, windows, axes=([0, 2, 3], [0, 2, 3]))                 # [O, C, kh, kw]
    cols = np.tensordot(g, w, axes=([1], [0]))                                  # [N, Ho, Wo, C, kh, kw]
    n, c, h, wd = x.shape
    ho, wo = g.shape[2:]
    dxp = np.zeros((n, c, h + 2 * pad, wd + 2 * pad), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride] += \
                cols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dxp[:, :, pad:pad + h, pad:pad + wd], dw


def reference_step(x, w, r, stride, pad):
    y, windows = reference_forward(x, w, stride, pad)
    loss = np.sum(y * r)
    dx, dw = reference_backward(x, w, r, windows, stride, pad)
    return loss, dx, dw


# ---------------------------------------------------------------- nngraph
def conv_graph(x, w, stride, pad):
    g = Graph("conv")
    xv = g.add_input("x", TensorType("float32", ("N",) + x.shape[1:]))
    wv = g.add_input("w", TensorType("float32", w.shape))
    y, = g.apply("conv2d", [xv, wv], {"stride": (stride, stride), "pads": (pad,) * 4, "dilation": (1, 1),
                                      "groups": 1})
    g.outputs["y"] = y
    r = g.add_input("r", y.type)
    prod, = g.apply("mul", [y, r])
    g.outputs["loss"], = g.apply("sum", [prod], {"axes": None})
    g.loss = "loss"
    forward = Graph("conv")
    forward.inputs, forward.nodes, forward.outputs = [xv, wv], [y.node], {"y": y}
    return forward, grad(g, wrt=["x", "w"], keep_outputs=False)


def best_times(fns: list, repeat: int) -> list[float]:
    """The best time of each function, calling them in turn round after round, so a change in
    the machine's load (other processes) reaches every candidate alike."""
    for fn in fns:
        fn()                                     # warm up
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    heads = ["nngraph ms", "/ NumPy ref"] + (["/ PyTorch"] if torch is not None else [])
    print(f"float32, best of {args.repeat} (taken in turns), {os.cpu_count()} cores"
          + (f", PyTorch {torch.__version__} ({torch.get_num_threads()} threads)" if torch is not None else ""))
    print()
    print("| conv2d: N, C, H=W → O, k, stride, pad | " + " | ".join(f"forward {h}" for h in heads) + " | "
          + " | ".join(f"fwd+bwd {h}" for h in heads) + " |")
    print("|---|" + "---:|" * (2 * len(heads)))
    for n, c, size, o, k, stride, pad in SETTINGS:
        x = rng.normal(size=(n, c, size, size)).astype(np.float32)
        w = (rng.normal(size=(o, c, k, k)) / np.sqrt(c * k * k)).astype(np.float32)
        forward, backward = conv_graph(x, w, stride, pad)
        fplan, bplan = Plan(forward), Plan(backward)
        y = fplan.run({"x": x, "w": w})["y"]
        r = rng.normal(size=y.shape).astype(np.float32)
        feeds = {"x": x, "w": w, "r": r}

        # the same numbers from all three before timing anything
        ours = bplan.run(feeds)
        ref = reference_step(x, w, r, stride, pad)
        np.testing.assert_allclose(y, reference_forward(x, w, stride, pad)[0], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(ours["grad:x"], ref[1], rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(ours["grad:w"], ref[2], rtol=1e-3, atol=1e-2)

        forwards = [lambda: fplan.run({"x": x, "w": w}), lambda: reference_forward(x, w, stride, pad)[0].copy()]
        steps = [lambda: bplan.run(feeds), lambda: reference_step(x, w, r, stride, pad)]
        if torch is not None:
            tx, tw, tr = (torch.from_numpy(a) for a in (x, w, r))

            def torch_forward():
                with torch.no_grad():
                    return torch.nn.functional.conv2d(tx, tw, stride=stride, padding=pad)

            def torch_step():
                gx, gw = tx.clone().requires_grad_(), tw.clone().requires_grad_()
                loss = (torch.nn.functional.conv2d(gx, gw, stride=stride, padding=pad) * tr).sum()
                loss.backward()
                return gx.grad, gw.grad

            gx, gw = torch_step()
            np.testing.assert_allclose(ours["grad:x"], gx.numpy(), rtol=1e-3, atol=1e-3)
            np.testing.assert_allclose(ours["grad:w"], gw.numpy(), rtol=1e-3, atol=1e-2)
            forwards.append(torch_forward)
            steps.append(torch_step)
        fwd, both = best_times(forwards, args.repeat), best_times(steps, args.repeat)
        cells = [f"{fwd[0] * 1e3:.2f}"] + [f"{fwd[0] / t:.2f}" for t in fwd[1:]] + \
                [f"{both[0] * 1e3:.2f}"] + [f"{both[0] / t:.2f}" for t in both[1:]]
        print(f"| {n}, {c}, {size} → {o}, {k}, {stride}, {pad} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
