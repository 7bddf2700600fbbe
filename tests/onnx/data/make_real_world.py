"""Makes the real-world ONNX files of tests/onnx/test_real_world.py and PyTorch's reference for each.

    python tests/onnx/data/make_real_world.py          # needs torch==2.13.0 (not in CI), ~20 s

Each model is small, with seeded random weights, wrapped so that the exported graph computes
both the model's output `y` and a mean-squared-error `loss` against a `target` input (the loss
is part of the file: nngraph trains an imported model on one of its outputs). Written beside
this script, per model NAME:

- NAME.onnx: exported by PyTorch's TorchScript exporter (`dynamo=False`; the dynamo exporter needs
  onnxscript, which is not installed here), opset 17, weights as initializers;
- NAME.npz: the inputs (`in:x`, `in:target`), PyTorch's outputs (`out:y`, `out:loss`), and
  `losses`, the loss before each of 10 plain SGD steps (lr `lr`) that PyTorch takes on the same
  batch; `batch2:*` holds a second batch of another size for the models exported with a
  dynamic batch.

npz files are read with np.load(allow_pickle=False): plain arrays, no pickle.
"""
from __future__ import annotations

import io
import math
import os
import sys

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS, OPSET = 10, 17


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))

    def forward(self, x):
        return self.net(x)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2))
        self.head = nn.Linear(8 * 2 * 2, 3)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


class LSTM(nn.Module):
    """Two stacked layers, batch first; the head reads every step's hidden state."""
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(4, 6, num_layers=2, batch_first=True)
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        hs, _ = self.rnn(x)
        return self.head(hs)


class GRU(nn.Module):
    """Bidirectional, time first; the head reads the last step."""
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(4, 5, bidirectional=True)
        self.head = nn.Linear(10, 2)

    def forward(self, x):
        hs, _ = self.rnn(x)
        return self.head(hs[-1])


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0, batch_first=True)

    def forward(self, x):
        return self.layer(x)


class GPTBlock(nn.Module):
    """Pre-norm decoder block: causal self-attention (a triu mask built in the graph), then an
    MLP with the exact GELU."""
    def __init__(self, d=16, heads=2):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(C // self.heads)
        future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        attention = scores.masked_fill(future, float("-inf")).softmax(-1)
        x = x + self.proj((attention @ v).transpose(1, 2).reshape(B, T, C))
        return x + self.mlp(self.ln2(x))


class UpBlock(nn.Module):
    """UNet-style: a downsampled path comes back up by a transposed convolution and by nearest
    (Resize) upsampling, each concatenated with the skip connection."""
    def __init__(self):
        super().__init__()
        self.down = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.up = nn.ConvTranspose2d(4, 4, 2, stride=2)
        self.resize = nn.Upsample(scale_factor=2, mode="nearest")
        self.out = nn.Conv2d(2 + 4 + 4, 2, 3, padding=1)

    def forward(self, x):
        low = self.down(x)
        return self.out(torch.cat([x, self.up(low), self.resize(low)], dim=1))


class WithLoss(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, target):
        y = self.model(x)
        return y, ((y - target) ** 2).mean()


# name -> (model, input shape, dynamic batch axis of x and target or None, lr)
MODELS = {
    "mlp": (MLP, (5, 8), 0, 0.1),
    "cnn": (CNN, (2, 1, 8, 8), 0, 0.1),
    "lstm": (LSTM, (3, 5, 4), None, 0.5),
    "gru": (GRU, (6, 3, 4), None, 0.5),
    "encoder_static": (Encoder, (2, 5, 16), None, 0.05),
    "encoder_dynamic": (Encoder, (2, 5, 16), 0, 0.05),
    "gpt_block": (GPTBlock, (2, 6, 16), None, 0.05),
    "up_block": (UpBlock, (1, 2, 8, 8), None, 0.05),
}


def make(name: str) -> None:
    make_model, shape, dynamic, lr = MODELS[name]
    torch.manual_seed(sorted(MODELS).index(name))
    model = WithLoss(make_model()).eval()
    with torch.no_grad():      # LayerNorm starts at ones and zeros: the exporter would merge equal initializers
        for weight in model.parameters():
            weight.add_(0.1 * torch.randn_like(weight))
    x = torch.randn(*shape)
    with torch.no_grad():
        y, loss = model(x, torch.zeros(1))
    target = torch.randn(*y.shape)
    with torch.no_grad():
        y, loss = model(x, target)
    buffer = io.BytesIO()
    axes = {"x": {dynamic: "N"}, "target": {dynamic: "N"}, "y": {dynamic: "N"}} if dynamic is not None else None
    torch.onnx.export(model, (x, target), buffer, input_names=["x", "target"], output_names=["y", "loss"],
                      opset_version=OPSET, dynamic_axes=axes, dynamo=False)
    arrays = {"in:x": x.numpy(), "in:target": target.numpy(), "out:y": y.numpy(), "out:loss": loss.numpy(),
              "lr": np.float32(lr), "losses": sgd_losses(model, x, target, lr)}
    if dynamic is not None:
        x2 = torch.randn(*((shape[0] + 2,) + shape[1:]))
        with torch.no_grad():
            t2 = torch.randn(*model.model(x2).shape)
            y2, loss2 = model(x2, t2)
        arrays |= {"batch2:x": x2.numpy(), "batch2:target": t2.numpy(), "batch2:y": y2.numpy()}
    with open(os.path.join(HERE, f"{name}.onnx"), "wb") as f:
        f.write(buffer.getvalue())
    np.savez_compressed(os.path.join(HERE, f"{name}.npz"), **arrays)


def sgd_losses(model: nn.Module, x, target, lr: float) -> np.ndarray:
    """The loss before each of STEPS plain SGD steps on one batch (a copy of the model trains)."""
    trained = WithLoss(model.model.__class__())
    trained.load_state_dict(model.state_dict())
    trained.train()
    opt = torch.optim.SGD(trained.parameters(), lr=lr)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        _, loss = trained(x, target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return np.array(losses, dtype=np.float64)


if __name__ == "__main__":
    torch.set_num_threads(1)
    for model_name in sys.argv[1:] or MODELS:
        make(model_name)
        print(f"{model_name}: {os.path.getsize(os.path.join(HERE, model_name + '.onnx')):,} bytes")
