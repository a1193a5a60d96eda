"""PyTorch helper: a MoE layer that exports as one ai.switchyard::MoE node.

    from switchyard_torch import SwitchyardMoE
    layer = SwitchyardMoE(hidden=1024, inter=2816, num_experts=8, k=2, activation="silu", gated=True,
                          normalize="sum")
    # DeepSeek-V3 style: sigmoid scores, grouped top-k, a selection-only bias, scaled weights, a shared expert
    layer = SwitchyardMoE(hidden=1024, inter=512, num_experts=64, k=6, activation="silu", gated=True,
                          scoring="sigmoid", normalize="sum", n_group=8, topk_group=3, group_score="top2sum",
                          routed_scaling_factor=2.5, selection_bias=True, shared_inter=1024)
    torch.onnx.export(model, args, "model.onnx", custom_opsets={"ai.switchyard": 1})

In PyTorch it computes the layer densely (a reference, not fast); Switchyard runs the exported node
sparsely. Semantics (see src/moe/moe_layer.h and src/moe/moe.cpp): p = score(x Wr^T + br);
c = p + selection_bias, limited to the experts of the topk_group best of n_group groups (group score:
best expert, or sum of the best two); e = topk(c, k); w = normalize(p[e]) * routed_scaling_factor;
y = sum_j w_j * expert_{e_j}(x) [+ sigmoid(x . shared_gate) * shared(x)], expert(x) = W2 act(W1 x + b1) + b2,
or gated W2 (act(W1 x + b1) * (W3 x + b3)) + b2; the shared expert has the experts' activation and
gating, no biases. Needs torch (Debian's python3-torch 1.13 works).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu, "identity": lambda t: t}


def _moe_reference(x, p, cfg):
    logits = x @ p["router_w"].t() + p["router_b"]
    scores = torch.softmax(logits, -1) if cfg["scoring"] == "softmax" else torch.sigmoid(logits)
    choice = scores + p["selection_bias"] if p.get("selection_bias") is not None else scores
    n_group, topk_group = cfg["n_group"], cfg["topk_group"]
    if n_group > 1:
        grouped = choice.view(choice.shape[0], n_group, -1)
        if cfg["group_score"] == "top2sum":
            group_scores = grouped.topk(2, dim=-1).values.sum(-1)
        else:
            group_scores = grouped.max(-1).values
        best = group_scores.topk(topk_group, dim=-1).indices
        keep = torch.zeros_like(group_scores).scatter(1, best, 1.0) > 0
        choice = choice.masked_fill(~keep.repeat_interleave(grouped.shape[-1], dim=1), float("-inf"))
    idx = torch.topk(choice, cfg["k"], dim=-1).indices
    v = torch.gather(scores, 1, idx)
    if cfg["normalize"] == "softmax":
        v = torch.softmax(v, -1)
    elif cfg["normalize"] == "sum":
        v = v / v.sum(-1, keepdim=True)
    v = v * cfg["routed_scaling_factor"]
    act = _ACTIVATIONS[cfg["activation"]]
    h = act(torch.einsum("th,eih->tei", x, p["w1"]) + p["b1"])  # every expert densely: [T, E, I]
    if p.get("w3") is not None:
        h = h * (torch.einsum("th,eih->tei", x, p["w3"]) + p["b3"])
    y_all = torch.einsum("tei,ehi->teh", h, p["w2"]) + p["b2"]  # [T, E, H]
    picked = torch.gather(y_all, 1, idx.unsqueeze(-1).expand(-1, -1, y_all.shape[-1]))
    y = (picked * v.unsqueeze(-1)).sum(1)
    if p.get("shared_w1") is not None:
        sh = act(x @ p["shared_w1"].t())
        if p.get("shared_w3") is not None:
            sh = sh * (x @ p["shared_w3"].t())
        sh = sh @ p["shared_w2"].t()
        if p.get("shared_gate") is not None:
            sh = sh * torch.sigmoid(x @ p["shared_gate"]).unsqueeze(-1)
        y = y + sh
    return y


_ORDER = ["router_w", "router_b", "w1", "b1", "w2", "b2", "w3", "b3", "in_w", "in_b", "out_w", "out_b", "selection_bias",
          "shared_w1", "shared_w2", "shared_w3", "shared_gate"]  # ai.switchyard::MoE inputs 1..17


class _MoEFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, cfg, *params):
        return _moe_reference(x, dict(zip(_ORDER, params)), cfg)

    @staticmethod
    def symbolic(g, x, cfg, *params):
        from torch.onnx.symbolic_helper import _optional_input_placeholder_tensor
        inputs = [x] + [t if t is not None else _optional_input_placeholder_tensor(g) for t in params]
        while len(inputs) > 1 and params[len(inputs) - 2] is None:  # drop trailing absent inputs
            inputs.pop()
        attrs = dict(k_i=cfg["k"], activation_s=cfg["activation"], scoring_s=cfg["scoring"], normalize_s=cfg["normalize"])
        if cfg["n_group"] > 1:
            attrs.update(n_group_i=cfg["n_group"], topk_group_i=cfg["topk_group"], group_score_s=cfg["group_score"])
        if cfg["routed_scaling_factor"] != 1.0:
            attrs["routed_scaling_factor_f"] = cfg["routed_scaling_factor"]
        return g.op("ai.switchyard::MoE", *inputs, **attrs)


class SwitchyardMoE(nn.Module):
    def __init__(self, hidden, inter, num_experts, k, activation="relu", gated=False, scoring="softmax",
                 normalize="none", n_group=1, topk_group=None, group_score="max", routed_scaling_factor=1.0,
                 selection_bias=False, shared_inter=0, shared_gate=False):
        super().__init__()
        self.cfg = dict(k=k, activation=activation, scoring=scoring, normalize=normalize, n_group=n_group,
                        topk_group=topk_group or n_group, group_score=group_score,
                        routed_scaling_factor=float(routed_scaling_factor))
        E, H, I = num_experts, hidden, inter
        self.router_w = nn.Parameter(torch.randn(E, H) / H ** 0.5)
        self.router_b = nn.Parameter(torch.zeros(E))
        self.w1 = nn.Parameter(torch.randn(E, I, H) / H ** 0.5)
        self.b1 = nn.Parameter(torch.zeros(E, I))
        self.w2 = nn.Parameter(torch.randn(E, H, I) / I ** 0.5)
        self.b2 = nn.Parameter(torch.zeros(E, H))
        self.w3 = nn.Parameter(torch.randn(E, I, H) / H ** 0.5) if gated else None
        self.b3 = nn.Parameter(torch.zeros(E, I)) if gated else None
        self.selection_bias = nn.Parameter(torch.zeros(E)) if selection_bias else None
        S = shared_inter
        self.shared_w1 = nn.Parameter(torch.randn(S, H) / H ** 0.5) if S else None
        self.shared_w2 = nn.Parameter(torch.randn(H, S) / S ** 0.5) if S else None
        self.shared_w3 = nn.Parameter(torch.randn(S, H) / H ** 0.5) if S and gated else None
        self.shared_gate = nn.Parameter(torch.randn(H) / H ** 0.5) if S and shared_gate else None

    def forward(self, x):
        params = [getattr(self, name, None) for name in _ORDER]
        return _MoEFunction.apply(x, self.cfg, *params)
