"""PyTorch helper: a MoE layer that exports as one ai.switchyard::MoE node.

    from switchyard_torch import SwitchyardMoE
    layer = SwitchyardMoE(hidden=1024, inter=2816, num_experts=8, k=2, activation="silu", gated=True,
                          normalize="sum")
    torch.onnx.export(model, args, "model.onnx", custom_opsets={"ai.switchyard": 1})

In PyTorch it computes the layer densely (a reference, not fast); Switchyard runs the exported node
sparsely. Semantics (see src/moe/moe_layer.h): p = score(x Wr^T + br); (v, e) = topk(p, k);
w = normalize(v); y = sum_j w_j * expert_{e_j}(x), expert(x) = W2 act(W1 x + b1) + b2, or gated
W2 (act(W1 x + b1) * (W3 x + b3)) + b2. Needs torch (Debian's python3-torch 1.13 works).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu, "identity": lambda t: t}


def _moe_reference(x, router_w, router_b, w1, b1, w2, b2, w3, b3, k, activation, scoring, normalize):
    logits = x @ router_w.t() + router_b
    p = torch.softmax(logits, -1) if scoring == "softmax" else torch.sigmoid(logits)
    v, idx = torch.topk(p, k, dim=-1)
    if normalize == "softmax":
        v = torch.softmax(v, -1)
    elif normalize == "sum":
        v = v / v.sum(-1, keepdim=True)
    act = _ACTIVATIONS[activation]
    h = act(torch.einsum("th,eih->tei", x, w1) + b1)  # every expert densely: [T, E, I]
    if w3 is not None:
        h = h * (torch.einsum("th,eih->tei", x, w3) + b3)
    y_all = torch.einsum("tei,ehi->teh", h, w2) + b2  # [T, E, H]
    picked = torch.gather(y_all, 1, idx.unsqueeze(-1).expand(-1, -1, y_all.shape[-1]))
    return (picked * v.unsqueeze(-1)).sum(1)


class _MoEFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, router_w, router_b, w1, b1, w2, b2, w3, b3, k, activation, scoring, normalize):
        return _moe_reference(x, router_w, router_b, w1, b1, w2, b2, w3, b3, k, activation, scoring, normalize)

    @staticmethod
    def symbolic(g, x, router_w, router_b, w1, b1, w2, b2, w3, b3, k, activation, scoring, normalize):
        inputs = [x, router_w, router_b, w1, b1, w2, b2] + ([w3, b3] if w3 is not None else [])
        return g.op("ai.switchyard::MoE", *inputs, k_i=k, activation_s=activation, scoring_s=scoring,
                    normalize_s=normalize)


class SwitchyardMoE(nn.Module):
    def __init__(self, hidden, inter, num_experts, k, activation="relu", gated=False, scoring="softmax",
                 normalize="none"):
        super().__init__()
        self.k, self.activation, self.scoring, self.normalize = k, activation, scoring, normalize
        self.router_w = nn.Parameter(torch.randn(num_experts, hidden) / hidden ** 0.5)
        self.router_b = nn.Parameter(torch.zeros(num_experts))
        self.w1 = nn.Parameter(torch.randn(num_experts, inter, hidden) / hidden ** 0.5)
        self.b1 = nn.Parameter(torch.zeros(num_experts, inter))
        self.w2 = nn.Parameter(torch.randn(num_experts, hidden, inter) / inter ** 0.5)
        self.b2 = nn.Parameter(torch.zeros(num_experts, hidden))
        self.w3 = nn.Parameter(torch.randn(num_experts, inter, hidden) / hidden ** 0.5) if gated else None
        self.b3 = nn.Parameter(torch.zeros(num_experts, inter)) if gated else None

    def forward(self, x):
        return _MoEFunction.apply(x, self.router_w, self.router_b, self.w1, self.b1, self.w2, self.b2, self.w3,
                                  self.b3, self.k, self.activation, self.scoring, self.normalize)
