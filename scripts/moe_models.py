"""PyTorch definitions of the models Switchyard is tested on.

Written the way users write MoE layers (data-dependent routing), so that `torch.jit.script` +
`torch.onnx.export` yields the NonZero / GatherND / ScatterElements graphs that Switchyard must run.
Needs torch (Debian's python3-torch 1.13 under /usr/bin/python3); tests never import this file.
"""
import gzip
import struct
from typing import Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


def read_idx(path: str) -> np.ndarray:
    """Reads an IDX file (gzip or plain) into a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    assert zero == 0 and dtype_code == 0x08, "only unsigned-byte IDX files are expected"
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_mnist(split: str) -> Tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(f"{FASHION_MNIST_DIR}/{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(f"{FASHION_MNIST_DIR}/{prefix}-labels-idx1-ubyte.gz")
    return images, labels


class Expert(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


class NoisyTopKMoE(nn.Module):
    """Shazeer et al. 2017 MoE layer with the seed classifier's routing:
    p = softmax(gate(x)); w, idx = topk(p, k); w = softmax(w); y = sum_i w_i * expert_idx_i(x).
    Training adds noise to p (p + N(0,1) * softplus(W_noise x)); inference does not."""

    def __init__(self, dim: int, num_experts: int, k: int, hidden: int):
        super().__init__()
        self.k = k
        self.gate = nn.Linear(dim, num_experts, bias=False)
        self.noise = nn.Linear(dim, num_experts, bias=False)
        self.experts = nn.ModuleList([Expert(dim, hidden) for _ in range(num_experts)])
        self.noisy = False

    def forward(self, x) -> Tuple[torch.Tensor, torch.Tensor]:
        p = F.softmax(self.gate(x), dim=-1)
        scores = p
        if self.noisy:
            scores = p + torch.randn_like(p) * F.softplus(self.noise(x))
        w, idx = torch.topk(scores, self.k, dim=-1)
        w = F.softmax(w, dim=-1)
        out = torch.zeros_like(x)
        for i, expert in enumerate(self.experts):
            token_idx, slot_idx = torch.where(idx == i)
            gate_w = w[token_idx, slot_idx].unsqueeze(-1)
            y = expert(x[token_idx]) * gate_w
            out = out.index_add(0, token_idx, y)
        return out, p


class SeedClassifier(nn.Module):
    """784 -> 16 embedding, MoE of 8 experts (16->16, ReLU, 16->16), top-2, 16 -> 10 head."""

    def __init__(self, dim: int = 16, num_experts: int = 8, k: int = 2, hidden: int = 16):
        super().__init__()
        self.embed = nn.Linear(784, dim)
        self.moe = NoisyTopKMoE(dim, num_experts, k, hidden)
        self.head = nn.Linear(dim, 10)

    def forward(self, image):
        h = self.embed(torch.flatten(image, 1))
        y, p = self.moe(h)
        return self.head(y)

    def forward_with_probs(self, image) -> Tuple[torch.Tensor, torch.Tensor]:
        h = self.embed(torch.flatten(image, 1))
        y, p = self.moe(h)
        return self.head(y), p


def importance_loss(p: torch.Tensor) -> torch.Tensor:
    """0.01 * (std(sum_batch p) / mean(sum_batch p))^2, as in SPEC.md."""
    importance = p.sum(dim=0)
    return 0.01 * (importance.std() / importance.mean()) ** 2


class SwiGLUExpert(nn.Module):
    def __init__(self, dim: int, inter: int):
        super().__init__()
        self.w1 = nn.Linear(dim, inter, bias=False)
        self.w2 = nn.Linear(inter, dim, bias=False)
        self.w3 = nn.Linear(dim, inter, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class MixtralBlock(nn.Module):
    """Mixtral-style sparse MoE block: softmax router -> topk -> renormalise -> one_hot / where ->
    SwiGLU experts -> index_add_."""

    def __init__(self, dim: int = 32, inter: int = 48, num_experts: int = 4, k: int = 2):
        super().__init__()
        self.num_experts = num_experts
        self.k = k
        self.router = nn.Linear(dim, num_experts, bias=False)
        self.experts = nn.ModuleList([SwiGLUExpert(dim, inter) for _ in range(num_experts)])

    def forward(self, hidden):
        batch, seq, dim = hidden.shape
        x = hidden.reshape(-1, dim)
        probs = F.softmax(self.router(x), dim=-1)
        weights, selected = torch.topk(probs, self.k, dim=-1)
        weights = weights / weights.sum(dim=-1, keepdim=True)
        out = torch.zeros_like(x)
        expert_mask = F.one_hot(selected, num_classes=self.num_experts).permute(2, 1, 0)
        for e, expert in enumerate(self.experts):
            slot, token = torch.where(expert_mask[e])
            ye = expert(x[token]) * weights[token, slot].unsqueeze(-1)
            out.index_add_(0, token, ye)
        return out.reshape(batch, seq, dim)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 32),
                                 nn.Tanh(), nn.Linear(32, 10), nn.LogSoftmax(dim=1))

    def forward(self, x):
        return self.net(x)


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=1, padding=1, groups=2)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.avg_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return F.log_softmax(self.fc(torch.flatten(x, 1)), dim=1)


class TinyAttention(nn.Module):
    """LayerNorm + single-head attention + GELU MLP: MatMul, Transpose, Softmax, Erf, Sqrt, Pow, Div."""

    def __init__(self, dim: int = 32):
        super().__init__()
        self.ln = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.mlp1 = nn.Linear(dim, 2 * dim)
        self.mlp2 = nn.Linear(2 * dim, dim)
        self.scale = dim ** 0.5

    def forward(self, x):
        h = self.ln(x)
        att = torch.matmul(self.q(h), self.k(h).transpose(-1, -2)) / self.scale
        h = x + torch.matmul(torch.softmax(att, dim=-1), self.v(h))
        rms = torch.sqrt(torch.pow(h, 2).mean(dim=-1, keepdim=True) + 1e-6)
        return h + self.mlp2(F.gelu(self.mlp1(h / rms)))
