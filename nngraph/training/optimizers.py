"""Optimizer update rules written as IR ops, so a training step is one graph: plain or momentum
SGD, Adam and AdamW. Each takes the gradient and the parameter's optimizer slots and returns the
update to subtract (times the learning rate) and the new slots. Plain SGD of an embedding table
is a sparse row update (sparse_sgd_step). Gradient clipping by global norm is here too: it scales
every gradient by one factor computed in IR."""
from __future__ import annotations

from nngraph.ir.graph import Value


def sgd_update(e, const, opt, g: Value, slots) -> tuple[Value, dict]:
    if "velocity" not in slots:
        return g, {}
    velocity = e("add", e("mul", const(opt.get("momentum")), slots["velocity"]), g)
    return velocity, {"velocity": velocity}


def sparse_sgd_step(e, param: Value, g: Value, lr: Value) -> Value | None:
    """Plain SGD's new value of a parameter whose gradient is a sum of row scatters (an embedding
    table read by `gather`), as an in-place row update: param + (-lr * rows) at the rows' indices,
    each row's updates summed first and added once (the index_add op), instead of a full table of
    zeros, the rows added in, and a full-table subtraction. Untouched rows are unchanged, as in the
    dense step (their gradient is zero), and touched ones round once, as there: the dense update.
    None when the gradient is anything else (dense, or a mix).

    Momentum and Adam get no such rewrite: every row's velocity or moments decay each step, and
    Adam moves rows whose gradient is zero, so a sparse ("lazy") update would change the result;
    their gradient is the dense scatter_add, whose kernel sums repeated rows by sorting instead of
    `np.add.at` (runtime/numpy/kernels/indexing.py)."""
    scatters = _row_scatters(g, param)
    if scatters is None:
        return None
    axes = {node.attrs.get("axis", 0) % param.type.rank for node in scatters}
    if len(axes) != 1:
        return None
    step_size = e("neg", lr)
    pairs = [v for node in scatters for v in (node.inputs[1], e("mul", step_size, node.inputs[0]))]
    return e("index_add", param, *pairs, axis=axes.pop())


def _row_scatters(g: Value, param: Value) -> list | None:
    """The scatter_add nodes whose sum `g` is, each into a table shaped like `param`; else None."""
    node = g.node
    if node is None:
        return None
    if node.op == "scatter_add" and node.inputs[2].type.shape == param.type.shape:
        return [node]
    if node.op == "add" and all(v.type.shape == param.type.shape for v in node.inputs):
        parts = [_row_scatters(v, param) for v in node.inputs]
        return None if any(p is None for p in parts) else [n for p in parts for n in p]
    return None


def adam_update(e, const, opt, g: Value, slots, t: Value) -> tuple[Value, dict]:
    b1, b2 = opt.get("beta1"), opt.get("beta2")
    m = e("add", e("mul", const(b1), slots["m"]), e("mul", const(1 - b1), g))
    v = e("add", e("mul", const(b2), slots["v"]), e("mul", const(1 - b2), e("mul", g, g)))
    m_hat = e("div", m, e("sub", const(1), e("pow", const(b1), t)))     # bias correction
    v_hat = e("div", v, e("sub", const(1), e("pow", const(b2), t)))
    update = e("div", m_hat, e("add", e("sqrt", v_hat), const(opt.get("eps"))))
    return update, {"m": m, "v": v}


def adamw_update(e, const, opt, g: Value, slots, t: Value, param: Value) -> tuple[Value, dict]:
    """Adam plus decoupled weight decay (Loshchilov & Hutter): the decay is added to the update,
    not to the gradient, so it is not rescaled by Adam's second moment."""
    update, new_slots = adam_update(e, const, opt, g, slots, t)
    return e("add", update, e("mul", const(opt.get("weight_decay")), param)), new_slots


def clip_by_global_norm(e, const, grads: list[Value], clip: float) -> list[Value]:
    """Every gradient times min(1, clip / ||g||), ||g|| the norm of all gradients together."""
    squares = [e("sum", e("mul", g, g), axes=None, keepdims=False) for g in grads]
    total = squares[0]
    for s in squares[1:]:
        total = e("add", total, s)
    norm = e("sqrt", total)
    limit = const(clip)
    scale = e("div", limit, e("where", e("greater", norm, limit), norm, limit))   # no division by a zero norm
    return [e("mul", g, scale) for g in grads]
