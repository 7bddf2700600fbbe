"""Optimizer update rules written as IR ops, so a training step is one graph: plain or momentum
SGD and Adam. Each takes the gradient and the parameter's optimizer slots and returns the update
to subtract (times the learning rate) and the new slots."""
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
