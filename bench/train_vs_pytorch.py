"""One training step (forward, backward, optimizer update) of four models: nngraph's NumPy
runtime (the -O2 step that training uses) against the same model written by hand in PyTorch
(float32, CPU), measured in turns in one run. Prints a README table of times and ratios.

Each PyTorch twin starts from nngraph's initial weights (model.init(0)); the script checks that
the first step's loss agrees (rtol 1e-4) and that the second step's does too (rtol 1e-3: the
gradients and the optimizer update agree) before timing anything.

    python bench/train_vs_pytorch.py [--batch 64] [--blocks 25] [--block-seconds 0.08]
"""
import argparse
import os
import sys
import time

import numpy as np
from common import batch_of

import nngraph
from nngraph.runtime.numpy.executor import Plan
from nngraph.training.step import initial_state, new_name, train_step_graph

try:
    import torch
    from torch import nn
    from torch.nn import functional as F
except ImportError:            # the comparison needs PyTorch
    torch = None


# ---------------------------------------------------------------- the PyTorch twins
# Submodules carry the names of nngraph's layer instances, so a parameter `hidden.w` is
# `hidden.weight` (transposed: nngraph computes x @ w, nn.Linear x @ weight.T).

if torch is not None:
    class Iris(nn.Module):
        """models/iris.nn: dense[8, relu] -> dense[3], cross entropy."""

        def __init__(self):
            super().__init__()
            self.hidden, self.scores = nn.Linear(4, 8), nn.Linear(8, 3)

        def forward(self, x, label):
            return F.cross_entropy(self.scores(F.relu(self.hidden(x))), label)

    class CnnDigits(nn.Module):
        """models/cnn_digits.nn: conv 3x3 "same" 16 + ReLU, max pool 2, conv 3x3 "same" 32 + ReLU,
        max pool 2, flatten, dense[64, relu], dense[10], cross entropy."""

        def __init__(self):
            super().__init__()
            self.strokes = nn.Conv2d(1, 16, 3, padding=1)
            self.shapes = nn.Conv2d(16, 32, 3, padding=1)
            self.hidden, self.scores = nn.Linear(128, 64), nn.Linear(64, 10)

        def forward(self, image, truth):
            x = F.max_pool2d(F.relu(self.strokes(image)), 2)
            x = F.max_pool2d(F.relu(self.shapes(x)), 2)
            return F.cross_entropy(self.scores(F.relu(self.hidden(x.flatten(1)))), truth)

    class RecallLstm(nn.Module):
        """models/long_memory.nn `lstm`: lstm_cell[16] (dsl/stdlib/recurrent.nn) over 40 steps from
        zero states, dense[4] on the last short-term memory, cross entropy. nn.LSTM computes the
        same cell: its gates i, f, g, o are the input, forget, memory (potential) and output gates;
        its second bias (bias_hh) stays 0 and is not trained, so there is one bias per gate."""

        def __init__(self):
            super().__init__()
            self.memory = nn.LSTM(4, 16, batch_first=True)
            self.memory.bias_hh_l0.requires_grad_(False)
            self.scores = nn.Linear(16, 4)

        def forward(self, sequence, first):
            _, (short, _) = self.memory(sequence)
            return F.cross_entropy(self.scores(short[0]), first)

    class LstmCell(nn.Module):
        """dsl/stdlib/recurrent.nn lstm_cell, its twelve parameters by the same names."""

        def __init__(self, n: int, hidden: int):
            super().__init__()
            for gate in ("forget", "input", "memory", "output"):
                self.register_parameter(f"{gate}_x", nn.Parameter(torch.empty(n, hidden)))
                self.register_parameter(f"{gate}_h", nn.Parameter(torch.empty(hidden, hidden)))
                self.register_parameter(f"{gate}_b", nn.Parameter(torch.zeros(hidden)))

        def forward(self, x, h, c):
            keep = torch.sigmoid(x @ self.forget_x + h @ self.forget_h + self.forget_b)
            potential = torch.tanh(x @ self.memory_x + h @ self.memory_h + self.memory_b)
            add = torch.sigmoid(x @ self.input_x + h @ self.input_h + self.input_b)
            long_term = keep * c + add * potential
            share = torch.sigmoid(x @ self.output_x + h @ self.output_h + self.output_b)
            return share * torch.tanh(long_term), long_term

    class RecallLstmLoop(nn.Module):
        """The same model with the cell written out and a Python loop over the 40 steps (what
        nngraph's scan does), instead of nn.LSTM's fused kernel."""

        def __init__(self):
            super().__init__()
            self.memory, self.scores = LstmCell(4, 16), nn.Linear(16, 4)

        def forward(self, sequence, first):
            short = long = sequence.new_zeros(sequence.shape[0], 16)
            for symbol in sequence.transpose(0, 1):
                short, long = self.memory(symbol, short, long)
            return F.cross_entropy(self.scores(short), first)

    def sinusoidal_positions(t: int, d: int) -> "torch.Tensor":
        """dsl/stdlib/attention.nn: sin and cos halves, frequencies 10000 ** (-2i / d)."""
        p = torch.arange(t, dtype=torch.float32)
        frequency = torch.exp(torch.arange(d // 2, dtype=torch.float32) * (-2 * 9.210340371976184 / d))
        angle = p[:, None] * frequency[None, :]
        return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)

    def padding_mask(ids):                                   # [B, 1, 1, T]: 0 or -1e9, added
        return torch.where(ids[:, None, None, :] != 0, 0.0, -1e9)

    def causal_mask(t: int):                                 # [T, T]
        p = torch.arange(t)
        return torch.where(p[:, None] >= p[None, :], 0.0, -1e9)

    class MultiHeadAttention(nn.Module):
        def __init__(self, heads: int, d: int, dim: int):
            super().__init__()
            self.heads = heads
            self.q, self.k, self.v = nn.Linear(d, dim), nn.Linear(d, dim), nn.Linear(d, dim)
            self.out = nn.Linear(dim, d)

        def split(self, x):                                  # [B, T, dim] -> [B, heads, T, dim / heads]
            return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

        def forward(self, query, memory, mask):
            q, k, v = self.split(self.q(query)), self.split(self.k(memory)), self.split(self.v(memory))
            mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)   # softmax(q k^T / sqrt(dk) + mask) v
            return self.out(mixed.transpose(1, 2).flatten(2))

    class FeedForward(nn.Module):
        def __init__(self, d: int, hidden: int):
            super().__init__()
            self.expand, self.project = nn.Linear(d, hidden), nn.Linear(hidden, d)

        def forward(self, x):
            return self.project(F.relu(self.expand(x)))

    class EncoderBlock(nn.Module):                           # pre-norm, as in attention.nn
        def __init__(self, heads: int, d: int, hidden: int):
            super().__init__()
            self.normed, self.attended = nn.LayerNorm(d, eps=1e-5), MultiHeadAttention(heads, d, d)
            self.normed2, self.fed = nn.LayerNorm(d, eps=1e-5), FeedForward(d, hidden)

        def forward(self, x, mask):
            normed = self.normed(x)
            x = x + self.attended(normed, normed, mask)
            return x + self.fed(self.normed2(x))

    class DecoderBlock(nn.Module):
        def __init__(self, heads: int, d: int, hidden: int):
            super().__init__()
            self.normed, self.looked = nn.LayerNorm(d, eps=1e-5), MultiHeadAttention(heads, d, d)
            self.normed2, self.heard = nn.LayerNorm(d, eps=1e-5), MultiHeadAttention(heads, d, d)
            self.normed3, self.fed = nn.LayerNorm(d, eps=1e-5), FeedForward(d, hidden)

        def forward(self, y, memory, self_mask, memory_mask):
            normed = self.normed(y)
            y = y + self.looked(normed, normed, self_mask)
            y = y + self.heard(self.normed2(y), memory, memory_mask)
            return y + self.fed(self.normed3(y))

    class Transformer(nn.Module):
        """models/transformer.nn (training graph): shared embedding 13 x 32 + sinusoidal positions,
        one encoder block and one decoder block (2 heads, width 32, feed-forward 64), layer norms
        after the encoder (`memory`) and the decoder (`final`), dense[13]; cross entropy over the
        real tokens (target_out != 0) only."""

        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(13, 32)
            self.enc, self.memory = EncoderBlock(2, 32, 64), nn.LayerNorm(32, eps=1e-5)
            self.dec, self.final = DecoderBlock(2, 32, 64), nn.LayerNorm(32, eps=1e-5)
            self.say = nn.Linear(32, 13)

        def forward(self, source, target_in, target_out):
            source_mask = padding_mask(source)
            x = self.embed(source)
            x = x + sinusoidal_positions(x.shape[1], 32)
            memory = self.memory(self.enc(x, source_mask))
            y = self.embed(target_in)
            y = y + sinusoidal_positions(y.shape[1], 32)
            scores = self.say(self.final(self.dec(y, memory, causal_mask(y.shape[1]), source_mask)))
            token_loss = F.cross_entropy(scores.flatten(0, 1), target_out.flatten(), reduction="none")
            real = (target_out.flatten() != 0).float()
            return (token_loss * real).sum() / real.sum()


def copy_weights(module, params: dict[str, np.ndarray]) -> None:
    """nngraph's parameters into the twin, by name; every trained twin parameter must be set."""
    targets = dict(module.named_parameters())
    done = set()

    def put(name, array):
        with torch.no_grad():
            targets[name].copy_(torch.from_numpy(np.ascontiguousarray(array)))
        done.add(name)

    if isinstance(module, RecallLstm):      # the twelve named gate weights -> nn.LSTM's i, f, g, o blocks
        gates = ["input", "forget", "memory", "output"]
        put("memory.weight_ih_l0", np.concatenate([params[f"memory.{g}_x"].T for g in gates]))
        put("memory.weight_hh_l0", np.concatenate([params[f"memory.{g}_h"].T for g in gates]))
        put("memory.bias_ih_l0", np.concatenate([params[f"memory.{g}_b"] for g in gates]))
        put("memory.bias_hh_l0", np.zeros(64, np.float32))
        params = {k: v for k, v in params.items() if not k.startswith("memory.")}
    for name, array in params.items():
        if name in targets:                  # the same name and layout
            put(name, array)
            continue
        owner, leaf = name.rsplit(".", 1)
        sub = module.get_submodule(owner)
        if leaf == "w":
            put(f"{owner}.weight", array.T if isinstance(sub, nn.Linear) else array)
        elif leaf in ("gain", "table"):
            put(f"{owner}.weight", array)
        else:                                # b, bias
            put(f"{owner}.bias", array)
    assert done == set(targets), f"twin parameters not set: {sorted(set(targets) - done)}"


# ---------------------------------------------------------------- one model, both sides
MODELS = [("models/iris.nn", None, "Iris"), ("models/cnn_digits.nn", None, "CnnDigits"),
          ("models/long_memory.nn", "lstm", "RecallLstm"), ("models/long_memory.nn", "lstm", "RecallLstmLoop"),
          ("models/transformer.nn", None, "Transformer")]
TWIN_NOTES = {"RecallLstm": "PyTorch: nn.LSTM", "RecallLstmLoop": "PyTorch: the cell in a Python loop"}


class NngraphStep:
    """The -O2 training step as `nngraph train` runs it: new parameters and state fed back."""

    def __init__(self, model, feeds):
        self.optimizer = model.train_config.optimizer
        self.plan = Plan(train_step_graph(model.graph, self.optimizer, 2))
        self.loss_name = model.graph.loss
        self.feeds, self.params = feeds, model.init(0)
        self.state = initial_state(model.graph, self.optimizer)

    def __call__(self) -> float:
        out = self.plan.run(self.feeds | self.state, self.params)
        self.params = {p: out[new_name(p)] for p in self.params}
        self.state = {s: out[new_name(s)] for s in self.state}
        return float(out[self.loss_name])


class TorchStep:
    def __init__(self, model, twin, feeds):
        opt = model.train_config.optimizer
        copy_weights(twin, model.init(0))
        trained = [p for p in twin.parameters() if p.requires_grad]
        if opt.kind == "adam":
            self.optimizer = torch.optim.Adam(trained, lr=opt.get("lr"), betas=(opt.get("beta1"), opt.get("beta2")),
                                              eps=opt.get("eps"))
        else:
            self.optimizer = torch.optim.SGD(trained, lr=opt.get("lr"), momentum=opt.get("momentum"))
        self.twin = twin
        self.inputs = [torch.from_numpy(feeds[v.name]) for v in model.graph.inputs]

    def __call__(self) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.twin(*self.inputs)
        loss.backward()
        self.optimizer.step()
        return loss.item()


def best_of_blocks(steps: list, blocks: int, block_seconds: float) -> list[float]:
    """Seconds per step of each callable: blocks of steps sized to `block_seconds`, taken in turns
    (one block of each, round after round), the best block of each; a change in the machine's
    load (other processes) reaches every candidate alike, and each has chances to meet a quiet
    moment in every part of the run."""
    repeats = []
    for step in steps:                                       # warm up for a block, and size the blocks
        start, done = time.perf_counter(), 0
        while done < 3 or time.perf_counter() - start < block_seconds:
            step()
            done += 1
        repeats.append(max(1, int(block_seconds * done / (time.perf_counter() - start))))
    best = [float("inf")] * len(steps)
    for _ in range(blocks):
        for k, (step, repeat) in enumerate(zip(steps, repeats)):
            start = time.perf_counter()
            for _ in range(repeat):
                step()
            best[k] = min(best[k], (time.perf_counter() - start) / repeat)
    return best


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=25, help="blocks per side, taken in turns; the best counts")
    parser.add_argument("--block-seconds", type=float, default=0.08)
    args = parser.parse_args()
    if torch is None:
        print("PyTorch is not installed: nothing to compare against (pip install torch==2.13.0).")
        return 0
    torch.set_num_threads(2)
    torch.manual_seed(0)
    print(f"float32, batch {args.batch}, best of {args.blocks} blocks of about {args.block_seconds} s per side "
          "and model, taken in turns (every model in each round), "
          f"{os.cpu_count()} cores; NumPy {np.__version__}, PyTorch {torch.__version__} "
          f"({torch.get_num_threads()} threads)")
    print()
    print(f"| model (batch {args.batch}), optimizer | first loss (both) | nngraph ms/step | PyTorch ms/step "
          "| nngraph / PyTorch |")
    print("|---|---:|---:|---:|---:|")
    rows, steps = [], []
    for path, name, twin_class in MODELS:
        model = nngraph.load(path, name)
        feeds = batch_of(model, args.batch)
        ours, theirs = NngraphStep(model, feeds), TorchStep(model, globals()[twin_class](), feeds)
        # the same model: the same first loss from the same weights, and the same loss after one update
        first = [ours(), theirs()]
        np.testing.assert_allclose(first[0], first[1], rtol=1e-4, err_msg=f"{path}: first-step loss")
        second = [ours(), theirs()]
        np.testing.assert_allclose(second[0], second[1], rtol=1e-3, err_msg=f"{path}: loss after one update")
        label = f"{path}" + (f" `{name}`" if name else "") + f", {model.train_config.optimizer}" \
            + (f" ({TWIN_NOTES[twin_class]})" if twin_class in TWIN_NOTES else "")
        rows.append((label, first[0]))
        steps += [ours, theirs]
    times = best_of_blocks(steps, args.blocks, args.block_seconds)     # every model in the same rounds
    for (label, loss), mine, torchs in zip(rows, times[0::2], times[1::2]):
        print(f"| {label} | {loss:.5f} | {mine * 1e3:.3f} | {torchs * 1e3:.3f} | {mine / torchs:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
