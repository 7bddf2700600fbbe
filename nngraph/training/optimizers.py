"""Optimizer update rules written as IR ops, so a training step is one graph: plain or momentum
SGD, Adam and AdamW. Each takes the gradient and the parameter's optimizer slots and returns the
update to subtract (times the learning rate) and the new slots. Gradient clipping by global norm
is here too: it scales every gradient by one factor computed in IR."""
from __future__ import annotations

from nngraph.ir.graph import Value


def sgd_update(e, const, opt, g: Value, slots) -> tuple[Value, dict]:
    if "velocity" not in slots:
        return g, {}
    velocity = e("add", e("mul", const(opt.get("momentum")), slots["velocity"]), g)
    return velocity, {"velocity": velocity}


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
