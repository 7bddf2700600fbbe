"""The step that ONNX's RNN, GRU and LSTM run at every time step, built as the body of an nngraph
scan in the shape of the standard library's cells (dsl/stdlib/recurrent.nn): the input and the
previous hidden state each go through a weight matrix, the gates are sigmoids (percentages) of
the sum, and the cell's nodes share one scope labelled `lstm_cell[H]`, so a picture draws a cell.

ONNX stacks the gates' weights in one matrix; the body multiplies once by the stack and slices
the gates out of the product (one matmul instead of one per gate), in ONNX's gate order: LSTM
i, o, f, c (input, output, forget, cell), GRU z, r, h (update, reset, hidden).

Body inputs: the carries (h, and c for an LSTM), this step's input x [B, I] and, when sequence
lengths are given, `running` [B, 1] (true while a sequence has steps left), then the captured
weights. Outputs: the new carries, then this step's output y."""
from __future__ import annotations

from dataclasses import dataclass

from nngraph.ir import Graph, TensorType, Value
from nngraph.ir.emit import Emitter
from nngraph.onnx.context import Reject

# ONNX activation name (case-insensitive) -> the number of (alpha, beta) it reads and their
# defaults, which are those of the ONNX operator of the same name (as onnxruntime reads them)
ACTIVATION_PARAMS = {
    "relu": (0, 0, None, None), "tanh": (0, 0, None, None), "sigmoid": (0, 0, None, None),
    "softsign": (0, 0, None, None), "softplus": (0, 0, None, None),
    "affine": (1, 1, 1.0, 0.0), "leakyrelu": (1, 0, 0.01, None), "thresholdedrelu": (1, 0, 1.0, None),
    "scaledtanh": (1, 1, 1.0, 1.0), "hardsigmoid": (1, 1, 0.2, 0.5), "elu": (1, 0, 1.0, None),
}


@dataclass(frozen=True)
class Activation:
    name: str
    alpha: float | None = None
    beta: float | None = None

    def __call__(self, e: Emitter, x: Value) -> Value:
        k = lambda value: e.const(value, x)      # noqa: E731 - a scalar of x's dtype
        name, alpha, beta = self.name, self.alpha, self.beta
        if name in ("relu", "tanh", "sigmoid", "softplus"):
            return e(name, x)
        if name == "softsign":
            return e("div", x, e("add", k(1), e("abs", x)))
        if name == "affine":
            return e("add", e("mul", x, k(alpha)), k(beta))
        if name == "leakyrelu":
            return e("where", e("less", x, k(0)), e("mul", x, k(alpha)), x)
        if name == "thresholdedrelu":
            return e("where", e("greater", x, k(alpha)), x, k(0))
        if name == "scaledtanh":
            return e("mul", k(alpha), e("tanh", e("mul", x, k(beta))))
        if name == "hardsigmoid":
            return clip(e, e("add", e("mul", x, k(alpha)), k(beta)), 0.0, 1.0)
        assert name == "elu"
        return e("where", e("less", x, k(0)), e("mul", k(alpha), e("sub", e("exp", x), k(1))), x)


def activations(names: list[str], alphas: list[float], betas: list[float]) -> list[Activation]:
    """ONNX's activations attribute with its alphas and betas, which are consumed in order by the
    activations that take them."""
    alphas, betas, out = list(alphas), list(betas), []
    for raw in names:
        name = raw.lower()
        if name not in ACTIVATION_PARAMS:
            raise Reject(f"activation {raw}")
        n_alpha, n_beta, alpha, beta = ACTIVATION_PARAMS[name]
        if n_alpha and alphas:
            alpha = alphas.pop(0)
        if n_beta and betas:
            beta = betas.pop(0)
        out.append(Activation(name, alpha, beta))
    return out


def clip(e: Emitter, x: Value, low: float, high: float) -> Value:
    """min(max(x, low), high), NaN kept."""
    x = e("where", e("less", x, e.const(low, x)), e.const(low, x), x)
    return e("where", e("less", e.const(high, x), x), e.const(high, x), x)


@dataclass
class CellSpec:
    kind: str                    # RNN, GRU or LSTM
    hidden: int
    acts: list[Activation]       # f (and g, h) of the ONNX spec
    clip: float | None = None
    masked: bool = False         # sequence lengths given: a `running` input per step
    biased: bool = False         # bias inputs (GRU: the input's and the state's apart; else summed)
    peepholes: bool = False      # LSTM only
    input_forget: bool = False   # LSTM: the forget gate is 1 - input gate
    linear_before_reset: bool = False   # GRU


def build_cell(spec: CellSpec, x: TensorType, h: TensorType, captured: list[TensorType], scope: str) -> Graph:
    """The scan body of one direction. `captured` are the types of the weights the body reads:
    wx [I, G*H], wh [H, G*H], then the bias (GRU: wb and rb [G*H], else b [G*H]), then the
    peepholes [3H]."""
    g = Graph(f"{spec.kind.lower()}_cell")
    g.scope_labels[scope] = f"{spec.kind.lower()}_cell[{spec.hidden}]"
    e = Emitter(g, scope=scope, role="forward")
    carries = [g.add_input("h", h)] + ([g.add_input("c", h)] if spec.kind == "LSTM" else [])
    xt = g.add_input("x", x)
    running = g.add_input("running", h.with_dtype("bool").with_shape((h.shape[0], 1))) if spec.masked else None
    names = ["wx", "wh"] + (["wb", "rb"] if spec.biased and spec.kind == "GRU" else ["b"] if spec.biased else []) \
        + (["p"] if spec.peepholes else [])
    if len(names) != len(captured):
        raise Reject(f"{len(captured)} weights for a cell that reads {len(names)}")
    w = {n: g.add_input(n, t) for n, t in zip(names, captured)}
    new = {"RNN": _rnn, "GRU": _gru, "LSTM": _lstm}[spec.kind](e, spec, carries, xt, w)
    y = new[0]
    if running is not None:      # a finished sequence keeps its state, and its outputs are 0
        new = [e("where", running, n, old) for n, old in zip(new, carries)]
        y = e("where", running, y, e.const(0, y))
    for name, value in zip(["h", "c"], new):
        g.outputs[f"{name}_next"] = value
    g.outputs["y"] = y
    return g.prune()


def _gate(e: Emitter, spec: CellSpec, stacked: Value, i: int) -> Value:
    """Gate i's part of a vector or matrix of stacked gates (its last axis)."""
    H, last = spec.hidden, stacked.type.rank - 1
    return e("slice", stacked, axes=(last,), starts=(i * H,), ends=((i + 1) * H,), steps=(1,))


def _fire(e: Emitter, spec: CellSpec, act: Activation, pre: Value) -> Value:
    """An activation of a pre-activation, clipped to [-clip, clip] first if asked."""
    return act(e, clip(e, pre, -spec.clip, spec.clip) if spec.clip is not None else pre)


def _rnn(e, spec, carries, x, w):
    (h,) = carries
    total = e("add", e("matmul", x, w["wx"]), e("matmul", h, w["wh"]))
    if spec.biased:
        total = e("add", total, w["b"])
    return [_fire(e, spec, spec.acts[0], total)]


def _lstm(e, spec, carries, x, w):
    h, c = carries
    f_, g_, h_ = spec.acts
    total = e("add", e("matmul", x, w["wx"]), e("matmul", h, w["wh"]))
    if spec.biased:
        total = e("add", total, w["b"])

    def peep(pre, k, cell):                       # a peephole: the gate also sees the long-term memory
        return e("add", pre, e("mul", _gate(e, spec, w["p"], k), cell)) if spec.peepholes else pre

    # P stacks the peepholes in the order i, o, f
    add = _fire(e, spec, f_, peep(_gate(e, spec, total, 0), 0, c))                  # input gate
    keep = e("sub", e.const(1, add), add) if spec.input_forget else \
        _fire(e, spec, f_, peep(_gate(e, spec, total, 2), 2, c))                    # forget gate
    potential = _fire(e, spec, g_, _gate(e, spec, total, 3))                        # a potential long-term memory
    long_term = e("add", e("mul", keep, c), e("mul", add, potential))
    share = _fire(e, spec, f_, peep(_gate(e, spec, total, 1), 1, long_term))        # output gate
    return [e("mul", share, h_(e, long_term)), long_term]


def _gru(e, spec, carries, x, w):
    (h,) = carries
    f_, g_ = spec.acts
    from_x = e("matmul", x, w["wx"])
    if spec.biased:
        from_x = e("add", from_x, w["wb"])
    from_h = e("matmul", h, w["wh"])
    if spec.biased:
        from_h = e("add", from_h, w["rb"])
    update = _fire(e, spec, f_, e("add", _gate(e, spec, from_x, 0), _gate(e, spec, from_h, 0)))
    reset = _fire(e, spec, f_, e("add", _gate(e, spec, from_x, 1), _gate(e, spec, from_h, 1)))
    if spec.linear_before_reset:        # the reset gate scales the state's product
        seen = e("mul", reset, _gate(e, spec, from_h, 2))
    else:                               # the reset gate scales the state before its product
        seen = e("matmul", e("mul", reset, h), _gate(e, spec, w["wh"], 2))
        if spec.biased:
            seen = e("add", seen, _gate(e, spec, w["rb"], 2))
    candidate = _fire(e, spec, g_, e("add", _gate(e, spec, from_x, 2), seen))
    return [e("add", e("mul", e("sub", e.const(1, update), update), candidate), e("mul", update, h))]
