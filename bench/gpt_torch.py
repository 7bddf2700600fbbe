"""The character GPT of models/gpt.nn (`char_transformer`) written by hand in PyTorch, with its
own key/value cache for generation: the twin that bench/gpt_vs_pytorch.py trains and
bench/generate.py times. The weights come from nngraph's parameters, by name."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class SelfAttention(nn.Module):
    def __init__(self, heads: int, d: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.out = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)

    def split(self, x):                                   # [B, T, d] -> [B, heads, T, d / heads]
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def forward(self, x, cache=None, start: int = 0):
        """Causal self-attention; with `cache` (keys, values [B, heads, L, k]), the rows are written
        at start.. and attend to the slots up to their own position (a preallocated cache)."""
        q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
        t = x.shape[1]
        if cache is None:
            mixed = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            keys, values = cache
            keys[:, :, start:start + t], values[:, :, start:start + t] = k, v
            k, v = keys[:, :, :start + t], values[:, :, :start + t]
            mixed = F.scaled_dot_product_attention(q, k, v, is_causal=t > 1 and start == 0)
        return self.out(mixed.transpose(1, 2).flatten(2))


class Block(nn.Module):                                   # encoder_block with a causal mask, pre-norm
    def __init__(self, heads: int, d: int, hidden: int):
        super().__init__()
        self.normed, self.attended = nn.LayerNorm(d, eps=1e-5), SelfAttention(heads, d)
        self.normed2 = nn.LayerNorm(d, eps=1e-5)
        self.expand, self.project = nn.Linear(d, hidden), nn.Linear(hidden, d)

    def forward(self, x, cache=None, start: int = 0):
        x = x + self.attended(self.normed(x), cache, start)
        return x + self.project(F.relu(self.expand(self.normed2(x))))


class CharGpt(nn.Module):
    """char_transformer[vocab, dim, heads, hidden, max_len] with two blocks."""

    def __init__(self, vocab: int, dim: int, heads: int, hidden: int, max_len: int):
        super().__init__()
        self.heads, self.max_len = heads, max_len
        self.chars, self.position = nn.Embedding(vocab, dim), nn.Embedding(max_len, dim)
        self.block1, self.block2 = Block(heads, dim, hidden), Block(heads, dim, hidden)
        self.normed, self.scores = nn.LayerNorm(dim, eps=1e-5), nn.Linear(dim, vocab)

    def forward(self, ids, caches=None, start: int = 0):
        x = self.chars(ids) + self.position(torch.arange(start, start + ids.shape[1]))
        x = self.block1(x, caches and caches[0], start)
        x = self.block2(x, caches and caches[1], start)
        return self.scores(self.normed(x))

    def empty_caches(self, batch: int):
        d = self.chars.embedding_dim
        shape = (batch, self.heads, self.max_len, d // self.heads)
        return [(torch.zeros(shape), torch.zeros(shape)) for _ in range(2)]

    def load_nngraph(self, params: dict[str, np.ndarray], prefix: str = "net.") -> None:
        """nngraph's parameters (net.block1.attended.q.w, ...) into this module; every one is set."""
        targets, done = dict(self.named_parameters()), set()
        for name, array in params.items():
            owner, leaf = name[len(prefix):].rsplit(".", 1)
            owner = owner.replace("fed.", "")              # feed_forward's expand/project sit in the block
            target = f"{owner}.{'bias' if leaf in ('b', 'bias') else 'weight'}"
            value = array.T if leaf == "w" else array
            with torch.no_grad():
                targets[target].copy_(torch.from_numpy(np.ascontiguousarray(value)))
            done.add(target)
        assert done == set(targets), f"twin parameters not set: {sorted(set(targets) - done)}"


@torch.no_grad()
def generate(model: CharGpt, prompt: np.ndarray, steps: int, cached: bool = True) -> np.ndarray:
    """Greedy tokens [B, steps] after `prompt` [B, P]: with the cache, or the whole context each step."""
    ids = torch.from_numpy(prompt)
    out = []
    if cached:
        caches = model.empty_caches(ids.shape[0])
        last = model(ids, caches, 0)[:, -1]
        at = ids.shape[1]
        for _ in range(steps):
            char = last.argmax(-1)
            out.append(char)
            last = model(char[:, None], caches, at)[:, -1]
            at += 1
    else:
        seq = ids
        for _ in range(steps):
            char = model(seq)[:, -1].argmax(-1)
            out.append(char)
            seq = torch.cat([seq, char[:, None]], dim=1)
    return torch.stack(out, dim=1).numpy()
