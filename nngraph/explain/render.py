"""Expressions as text or as HTML (sub/sup, no scripts): one walk, two styles.

Notation: `·` multiplies elementwise, `×` is the matrix product, `ᵀ` transposes, `Σ_N` sums over
the axis named N (a reduction that undoes broadcasting reads as such a sum), `1[x > 0]` is the
step function (1 where x > 0, else 0), `∂loss/∂x` is a factor derived on its own line.
"""
from __future__ import annotations

import html

import numpy as np

from nngraph.explain.expr import Expr

_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_PREC = {"add": 60, "sub": 60, "mul": 70, "div": 70, "matmul": 70, "neg": 80, "pow": 90, "greater": 50}
_TRANSPARENT = ("broadcast_like", "reshape_like", "expand_dims", "reshape", "cast")
_FUNCTIONS = {"exp": "exp", "log": "log", "sqrt": "√", "sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu",
              "softplus": "softplus", "softmax": "softmax", "log_softmax": "log_softmax", "one_hot": "one_hot",
              "sign": "sign", "abs": "abs"}
_DESCRIBED = {"conv2d_weight_grad": "correlate", "conv2d_input_grad": "conv_transpose",
              "max_pool2d_grad": "route_to_max", "avg_pool2d_grad": "spread_evenly",
              "scatter_add": "scatter_add", "slice_grad": "pad_back", "gather": "gather"}

# gradient ops whose last input only lends its shape: not shown
_SHAPE_ONLY_LAST = ("conv2d_weight_grad", "conv2d_input_grad")


class Text:
    def name(self, s: str) -> str:
        return s

    def sub(self, s: str) -> str:
        return f"_{s}" if len(s) == 1 or s.isalnum() else f"_({s})"

    def sup(self, s: str) -> str:
        return s.translate(_SUPERSCRIPT) if all(c in "0123456789-" for c in s) else f"^{s}"

    def sym(self, s: str) -> str:
        return s


class Html(Text):
    def name(self, s: str) -> str:
        return f"<var>{html.escape(s)}</var>"

    def sub(self, s: str) -> str:
        return f"<sub>{html.escape(s)}</sub>"

    def sup(self, s: str) -> str:
        return f"<sup>{html.escape(s)}</sup>"

    def sym(self, s: str) -> str:
        return html.escape(s)


TEXT, HTML = Text(), Html()


def render(expr: Expr, style: Text = TEXT) -> str:
    return _render(expr, style)[0]


def _render(e: Expr, st: Text) -> tuple[str, int]:
    op, a = e.op, e.args
    if op == "grad":
        return _grad_label(e.label, st), 100
    if op == "leaf":
        return st.name(e.label), 100
    if op == "const":
        return st.sym(_number(e.attrs["value"])), 100 if np.asarray(e.attrs["value"]).ravel()[0] >= 0 else 80
    if op in _TRANSPARENT:
        return _render(a[0], st)
    if op == "mul" and _same(a[0], a[1]):
        return _wrap(a[0], st, 91) + st.sup("2"), 90
    if op in ("add", "sub", "mul", "div", "matmul"):
        sign = {"add": " + ", "sub": " − ", "mul": " · ", "div": " / ", "matmul": " × "}[op]
        p = _PREC[op]
        left = _wrap(a[0], st, p, op)
        right = _wrap(a[1], st, p + (1 if op in ("sub", "div") else 0), op)
        return left + st.sym(sign) + right, p
    if op == "neg":
        return st.sym("−") + _wrap(a[0], st, 81), 80
    if op == "pow":
        base = _wrap(a[0], st, 91)
        if a[1].op == "const" and np.asarray(a[1].attrs["value"]).ndim == 0:
            return base + st.sup(_number(a[1].attrs["value"])), 90
        return base + st.sym("^") + _wrap(a[1], st, 91), 90
    if op == "transpose":
        perm = tuple(e.attrs.get("perm", ()))
        if len(perm) >= 2 and perm[:-2] == tuple(range(len(perm) - 2)) and perm[-2:] == (len(perm) - 1, len(perm) - 2):
            return _wrap(a[0], st, 91) + st.sym("ᵀ"), 90
        return st.sym("transpose") + "(" + _render(a[0], st)[0] + st.sym(f", {list(perm)})"), 100
    if op in ("sum", "mean"):
        over = e.attrs.get("_over") or _axes_names(a[0], e.attrs.get("axes"))
        head = st.sym("Σ" if op == "sum" else "mean") + (st.sub(over) if over else "")
        return head + " " + _wrap(a[0], st, 71), 70
    if op == "dim_size":
        return st.name(e.attrs.get("_over") or _axes_names(a[0], e.attrs.get("axes")) or "count"), 100
    if op == "where" and a[0].op == "greater" and a[2].op == "const" and a[2].const_equals(0):
        cond = _render(a[0], st)[0]
        return _wrap(a[1], st, 70, "mul") + st.sym(" · 1[") + cond + st.sym("]"), 70
    if op == "greater":
        return _wrap(a[0], st, 51) + st.sym(" > ") + _wrap(a[1], st, 51), 50
    if op in _FUNCTIONS:
        return st.sym(_FUNCTIONS[op]) + "(" + _render(a[0], st)[0] + ")", 100
    name = _DESCRIBED.get(op, op)
    shown = a[:2] if op in _SHAPE_ONLY_LAST else a
    inner = ", ".join(_render(x, st)[0] for x in shown)
    return st.sym(name) + "(" + inner + ")", 100


def _wrap(e: Expr, st: Text, need: int, parent: str = "") -> str:
    text, p = _render(e, st)
    # elementwise and matrix products do not associate with each other: bracket one inside the other
    mixed = (parent == "matmul" and e.op in ("mul", "div", "where")) or (parent == "mul" and e.op == "matmul")
    return text if p >= need and not mixed else "(" + text + ")"


def _same(x: Expr, y: Expr) -> bool:
    if x is y or (x.op in ("leaf", "grad") and y.op == x.op and x.value is y.value):
        return True
    return (x.op == y.op and x.op not in ("leaf", "grad", "const") and len(x.args) == len(y.args)
            and x.attrs == y.attrs and all(_same(p, q) for p, q in zip(x.args, y.args)))


def _grad_label(label: str, st: Text) -> str:
    return st.sym(label)


def _axes_names(x: Expr, axes) -> str:
    shape = x.shape
    if not shape:
        return ""
    if axes is None:
        axes = range(len(shape))
    names = []
    for axis in axes:
        axis = axis % len(shape) if len(shape) else axis
        dim = shape[axis] if axis < len(shape) else "?"
        names.append(str(dim) if isinstance(dim, str) else f"axis {axis}")
    return ",".join(names)


def _number(value) -> str:
    array = np.asarray(value)
    if array.ndim or array.size != 1:
        flat = array.ravel()
        return _number(flat[0]) if np.all(flat == flat[0]) else f"[{', '.join(_number(x) for x in flat[:4])}…]"
    x = float(array)
    text = f"{x:.6g}"
    return ("−" + text[1:]) if text.startswith("-") else text
