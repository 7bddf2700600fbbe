"""Hand-written twins of the bench/models/*.nn workloads that bench/backends.py measures: each
model written directly in jax.numpy (for a `jax.jit` step with `jax.grad`) and as a PyTorch
`nn.Module`, computing what the .nn model computes, by nngraph's parameter names.

JAX twins mirror the .nn models op for op (the same matmuls, the same gates, the same masks), so
nngraph's JAX backend is measured against the same computation written by hand. PyTorch twins are
what a PyTorch user would write (nn.Linear, nn.Conv2d, nn.LSTM, scaled_dot_product_attention).

Every function states float32 where it makes an array: nngraph's JAX backend turns on jax's
64-bit mode for the whole process, where jnp.zeros would otherwise be float64.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

try:
    import torch
    from torch import nn
    from torch.nn import functional as F
except ImportError:                       # bench/backends.py then prints "not installed"
    torch = None


# ================================================================ JAX
def _dense(p, name, x):
    return x @ p[name + ".w"] + p[name + ".b"]


def _cross_entropy(scores, labels):
    """Mean over every position of -log softmax(scores)[label] (dsl/stdlib/losses.nn)."""
    logp = jax.nn.log_softmax(scores, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[..., None], axis=-1))


def mlp_scores(p, b):
    h = jax.nn.relu(_dense(p, "hidden1", b["image"]))
    h = jax.nn.relu(_dense(p, "hidden2", h))
    return _dense(p, "scores", h)


def _conv(x, w, b, padding):
    y = jax.lax.conv_general_dilated(x, w, (1, 1), [(padding, padding)] * 2,
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return jax.nn.relu(y + b[:, None, None])


def _max_pool2(x):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


def lenet_scores(p, b):
    x = _max_pool2(_conv(b["image"], p["c1.w"], p["c1.b"], 2))
    x = _max_pool2(_conv(x, p["c3.w"], p["c3.b"], 0))
    x = jax.nn.relu(_dense(p, "f5", x.reshape(x.shape[0], -1)))
    x = jax.nn.relu(_dense(p, "f6", x))
    return _dense(p, "scores", x)


def lstm_scores(p, b):
    """lstm_cell[128] of dsl/stdlib/recurrent.nn in a lax.scan over time, dense[10] on the last h."""
    steps = jnp.transpose(b["sequence"], (1, 0, 2))

    def cell(carry, x):
        h, c = carry

        def gate(g):
            return x @ p[f"memory.{g}_x"] + h @ p[f"memory.{g}_h"] + p[f"memory.{g}_b"]
        keep, potential, add = jax.nn.sigmoid(gate("forget")), jnp.tanh(gate("memory")), jax.nn.sigmoid(gate("input"))
        c = keep * c + add * potential
        return (jax.nn.sigmoid(gate("output")) * jnp.tanh(c), c), None

    zeros = jnp.zeros((steps.shape[1], 128), jnp.float32)
    (h, _), _ = jax.lax.scan(cell, (zeros, zeros), steps)
    return _dense(p, "scores", h)


def _layer_norm(p, name, x):
    centred = x - jnp.mean(x, axis=-1, keepdims=True)
    variance = jnp.mean(centred * centred, axis=-1, keepdims=True)
    return centred / jnp.sqrt(variance + 1e-5) * p[name + ".gain"] + p[name + ".bias"]


def _attention(p, name, x, mask, heads=4):
    """multi_head_attention of dsl/stdlib/attention.nn (self-attention)."""
    def split(y):                                            # [B, T, d] -> [B, heads, T, d / heads]
        return jnp.transpose(y.reshape(y.shape[0], y.shape[1], heads, -1), (0, 2, 1, 3))
    q, k, v = (split(_dense(p, f"{name}.{w}", x)) for w in "qkv")
    scores = (q @ jnp.swapaxes(k, -1, -2)) * q.shape[-1] ** -0.5 + mask
    mixed = jax.nn.softmax(scores, axis=-1) @ v
    merged = jnp.transpose(mixed, (0, 2, 1, 3)).reshape(x.shape)
    return _dense(p, f"{name}.out", merged)


def _encoder_block(p, name, x, mask):
    x = x + _attention(p, f"{name}.attended", _layer_norm(p, f"{name}.normed", x), mask)
    h = jax.nn.relu(_dense(p, f"{name}.fed.expand", _layer_norm(p, f"{name}.normed2", x)))
    return x + _dense(p, f"{name}.fed.project", h)


def gpt_scores(p, b):
    text = b["text"]
    t = text.shape[1]
    x = p["chars.table"][text] + p["positions.table"][:t]
    position = jnp.arange(t)
    mask = jnp.where(position[:, None] >= position[None, :], jnp.float32(0), jnp.float32(-1e9))
    x = _encoder_block(p, "block2", _encoder_block(p, "block1", x, mask), mask)
    return _dense(p, "scores", _layer_norm(p, "final", x))


def w2v_real(p, b):
    centre = p["words.table"][b["centre"]]                                  # [N, 100]
    return jnp.sum(centre * p["contexts.table"][b["context"]], axis=-1)      # [N]


def w2v_noise(p, b):
    centre = p["words.table"][b["centre"]]
    return jnp.sum(centre[:, None, :] * p["contexts.table"][b["negatives"]], axis=-1)   # [N, 5]


def w2v_loss(p, b):
    real, noise = w2v_real(p, b), w2v_noise(p, b)
    return jnp.mean(jax.nn.softplus(real) - real) + jnp.mean(jax.nn.softplus(noise))


def classifier(scores_fn, target):
    """(outputs, loss) functions of a model whose output is `probs` = softmax(scores)."""
    return (lambda p, b: {"probs": jax.nn.softmax(scores_fn(p, b), axis=-1)},
            lambda p, b: _cross_entropy(scores_fn(p, b), b[target]))


# workload -> (outputs(params, inputs) -> {output name: array}, loss(params, batch) -> scalar)
JAX_TWINS = {
    "mlp": classifier(mlp_scores, "label"),
    "cnn": classifier(lenet_scores, "label"),
    "lstm": classifier(lstm_scores, "label"),
    "gpt": classifier(gpt_scores, "next"),
    "word2vec": (lambda p, b: {"probability": jax.nn.sigmoid(w2v_real(p, b))}, w2v_loss),
}


def jax_sgd_step(loss_fn, lr: float):
    """`step(params, batch) -> (new params, loss)`: jax.grad and plain SGD, the params donated."""
    def step(params, batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        return jax.tree_util.tree_map(lambda w, g: w - lr * g, params, grads), loss
    return jax.jit(step, donate_argnums=0)


# ================================================================ PyTorch
# Submodules carry nngraph's layer names, so nngraph's `hidden1.w` is `hidden1.weight` (transposed:
# nngraph computes x @ w, nn.Linear x @ weight.T); see `parameter_map`.

if torch is not None:
    class Mlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden1, self.hidden2, self.scores = nn.Linear(784, 256), nn.Linear(256, 256), nn.Linear(256, 10)

        def forward(self, b):
            return self.scores(F.relu(self.hidden2(F.relu(self.hidden1(b["image"])))))

    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c3 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)
            self.f5, self.f6, self.scores = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

        def forward(self, b):
            x = F.max_pool2d(F.relu(self.c1(b["image"])), 2)
            x = F.max_pool2d(F.relu(self.c3(x)), 2)
            return self.scores(F.relu(self.f6(F.relu(self.f5(x.flatten(1))))))

    class Lstm(nn.Module):
        """nn.LSTM computes lstm_cell's gates (i, f, g, o: input, forget, memory, output); its
        second bias (bias_hh) stays 0 and untrained, so there is one bias per gate as in nngraph."""

        def __init__(self):
            super().__init__()
            self.memory = nn.LSTM(64, 128, batch_first=True)
            self.memory.bias_hh_l0.requires_grad_(False)
            self.scores = nn.Linear(128, 10)

        def forward(self, b):
            _, (h, _) = self.memory(b["sequence"])
            return self.scores(h[0])

    class Attention(nn.Module):
        def __init__(self, d: int, heads: int):
            super().__init__()
            self.heads = heads
            self.q, self.k, self.v, self.out = (nn.Linear(d, d) for _ in range(4))

        def forward(self, x):
            def split(y):
                return y.unflatten(-1, (self.heads, -1)).transpose(1, 2)
            mixed = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)), is_causal=True)
            return self.out(mixed.transpose(1, 2).flatten(2))

    class FeedForward(nn.Module):
        def __init__(self, d: int, hidden: int):
            super().__init__()
            self.expand, self.project = nn.Linear(d, hidden), nn.Linear(hidden, d)

        def forward(self, x):
            return self.project(F.relu(self.expand(x)))

    class Block(nn.Module):                          # encoder_block with a causal mask, pre-norm
        def __init__(self, d: int, heads: int, hidden: int):
            super().__init__()
            self.normed, self.attended = nn.LayerNorm(d, eps=1e-5), Attention(d, heads)
            self.normed2, self.fed = nn.LayerNorm(d, eps=1e-5), FeedForward(d, hidden)

        def forward(self, x):
            x = x + self.attended(self.normed(x))
            return x + self.fed(self.normed2(x))

    class Gpt(nn.Module):
        def __init__(self):
            super().__init__()
            self.chars, self.positions = nn.Embedding(64, 128), nn.Embedding(64, 128)
            self.block1, self.block2 = Block(128, 4, 512), Block(128, 4, 512)
            self.final, self.scores = nn.LayerNorm(128, eps=1e-5), nn.Linear(128, 64)

        def forward(self, b):
            text = b["text"]
            x = self.chars(text) + self.positions.weight[:text.shape[1]]
            return self.scores(self.final(self.block2(self.block1(x))))

    class Word2Vec(nn.Module):
        def __init__(self):
            super().__init__()
            self.words, self.contexts = nn.Embedding(5000, 100), nn.Embedding(5000, 100)

        def forward(self, b):
            centre = self.words(b["centre"])
            real = (centre * self.contexts(b["context"])).sum(-1)
            if "negatives" not in b:                 # inference: only the real pair's probability
                return real, None
            noise = (centre[:, None, :] * self.contexts(b["negatives"])).sum(-1)
            return real, noise

    def classifier_loss(target):
        return lambda module, b: F.cross_entropy(module(b).flatten(0, -2), b[target].flatten())

    def w2v_torch_loss(module, b):
        real, noise = module(b)
        return (F.softplus(real) - real).mean() + F.softplus(noise).mean()

    def probs(module, b):
        return {"probs": F.softmax(module(b), dim=-1)}

    # workload -> (module class, outputs(module, inputs) -> {name: tensor}, loss(module, batch))
    TORCH_TWINS = {
        "mlp": (Mlp, probs, classifier_loss("label")),
        "cnn": (LeNet, probs, classifier_loss("label")),
        "lstm": (Lstm, probs, classifier_loss("label")),
        "gpt": (Gpt, probs, classifier_loss("next")),
        "word2vec": (Word2Vec, lambda m, b: {"probability": torch.sigmoid(m(b)[0])}, w2v_torch_loss),
    }
else:
    TORCH_TWINS = {}

LSTM_GATES = ["input", "forget", "memory", "output"]          # nn.LSTM's order of its four blocks


def parameter_map(module) -> dict[str, tuple[str, bool]]:
    """nngraph parameter name -> (PyTorch parameter name, transposed), from the submodules' types.
    An nn.LSTM is left out: `to_torch` and `from_torch` stack and split its gates."""
    names = {}
    for owner, sub in module.named_modules():
        if isinstance(sub, nn.Linear):
            names |= {f"{owner}.w": (f"{owner}.weight", True), f"{owner}.b": (f"{owner}.bias", False)}
        elif isinstance(sub, nn.Conv2d):
            names |= {f"{owner}.w": (f"{owner}.weight", False), f"{owner}.b": (f"{owner}.bias", False)}
        elif isinstance(sub, nn.LayerNorm):
            names |= {f"{owner}.gain": (f"{owner}.weight", False), f"{owner}.bias": (f"{owner}.bias", False)}
        elif isinstance(sub, nn.Embedding):
            names[f"{owner}.table"] = (f"{owner}.weight", False)
    return names


def _lstms(module):
    return [(owner, sub) for owner, sub in module.named_modules() if isinstance(sub, nn.LSTM)]


def to_torch(module, params: dict[str, np.ndarray]) -> None:
    """nngraph's parameters into the twin; every trained parameter of the twin must be set."""
    targets, done = dict(module.named_parameters()), set()

    def put(name, array):
        with torch.no_grad():
            targets[name].copy_(torch.from_numpy(np.ascontiguousarray(array)))
        done.add(name)

    for owner, lstm in _lstms(module):
        put(f"{owner}.weight_ih_l0", np.concatenate([params[f"{owner}.{g}_x"].T for g in LSTM_GATES]))
        put(f"{owner}.weight_hh_l0", np.concatenate([params[f"{owner}.{g}_h"].T for g in LSTM_GATES]))
        put(f"{owner}.bias_ih_l0", np.concatenate([params[f"{owner}.{g}_b"] for g in LSTM_GATES]))
        put(f"{owner}.bias_hh_l0", np.zeros(4 * lstm.hidden_size, np.float32))
    for name, (theirs, transposed) in parameter_map(module).items():
        put(theirs, params[name].T if transposed else params[name])
    assert done == set(targets), f"twin parameters not set: {sorted(set(targets) - done)}"


def from_torch(module) -> dict[str, np.ndarray]:
    """The twin's parameters by nngraph's names (NumPy copies)."""
    theirs = {k: v.detach().numpy() for k, v in module.named_parameters()}
    params = {name: (theirs[t].T if transposed else theirs[t]).copy()
              for name, (t, transposed) in parameter_map(module).items()}
    for owner, lstm in _lstms(module):
        blocks = {kind: np.split(theirs[f"{owner}.{kind}_l0"], 4) for kind in ("weight_ih", "weight_hh", "bias_ih")}
        for g, x, h, b in zip(LSTM_GATES, blocks["weight_ih"], blocks["weight_hh"], blocks["bias_ih"]):
            params |= {f"{owner}.{g}_x": x.T.copy(), f"{owner}.{g}_h": h.T.copy(), f"{owner}.{g}_b": b.copy()}
    return params
