"""The MoE export corpus: MoE layers written the many ways users write them, exported the ways users export.

Each variant is one combination of
  router    how experts are chosen and weighted (softmax/sigmoid/raw logits, top-k or argmax, renormalised
            by softmax, by the sum (with or without an epsilon), not at all, scaled)
  dispatch  how the rows of each expert are picked (torch.where + index_add_, boolean-mask indexing,
            Mixtral's one_hot/where, sort by expert and slice by counts, dense: every expert on every token)
  combine   routing weight applied to each expert's rows before the scatter, or after all experts
  body      ReLU/GELU/GELU-tanh/SiLU MLP, SwiGLU, GeGLU, packed gate-up (one Linear of 2I then chunk),
            biases on or off
  layers    1 to 3 MoE layers in one model
and is exported by torch.jit.script and by tracing (trace inputs are checked to reach every expert),
at opset 13 and 17. Written independently of scripts/moe_models.py (the seed classifier's own code).

Usage (Debian's torch 1.13):  /usr/bin/python3 scripts/moe_corpus.py [--out tests/corpus] [--only NAME]
      (PyPI torch 2.x venv):     VENV2/bin/python scripts/moe_corpus.py    (dynamo=True and dynamo=False exports)
      (onnxslim, same venv):     VENV2/bin/python scripts/moe_corpus.py --simplify
Each variant writes NAME.onnx, NAME.inputs.npz (inputs of another batch size than the export example)
and NAME.expected.npz (PyTorch's outputs on them). Tests need no torch.
"""
import argparse
import json
import os
import sys
from typing import List

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# ----------------------------------------------------------------------------------------------- bodies
class MLPBody(nn.Module):
    def __init__(self, dim: int, inter: int, act: str, bias: bool):
        super().__init__()
        self.up = nn.Linear(dim, inter, bias=bias)
        self.down = nn.Linear(inter, dim, bias=bias)
        self.act = act

    def forward(self, x):
        h = self.up(x)
        if self.act == "relu":
            h = torch.relu(h)
        elif self.act == "gelu":
            h = F.gelu(h)
        elif self.act == "gelu_tanh":
            h = F.gelu(h, approximate="tanh")
        else:
            h = F.silu(h)
        return self.down(h)


class GLUBody(nn.Module):
    """act(gate(x)) * up(x) -> down; act silu (SwiGLU) or gelu (GeGLU)."""

    def __init__(self, dim: int, inter: int, act: str, bias: bool):
        super().__init__()
        self.gate = nn.Linear(dim, inter, bias=bias)
        self.up = nn.Linear(dim, inter, bias=bias)
        self.down = nn.Linear(inter, dim, bias=bias)
        self.act = act

    def forward(self, x):
        g = self.gate(x)
        g = F.silu(g) if self.act == "silu" else F.gelu(g)
        return self.down(g * self.up(x))


class PackedGLUBody(nn.Module):
    """One Linear producing [gate | up], split with chunk, as many checkpoints store it."""

    def __init__(self, dim: int, inter: int, act: str, bias: bool):
        super().__init__()
        self.gate_up = nn.Linear(dim, 2 * inter, bias=bias)
        self.down = nn.Linear(inter, dim, bias=bias)
        self.act = act

    def forward(self, x):
        g, u = self.gate_up(x).chunk(2, dim=-1)
        g = F.silu(g) if self.act == "silu" else F.gelu(g)
        return self.down(g * u)


def make_body(kind: str, dim: int, inter: int, bias: bool) -> nn.Module:
    if kind in ("relu", "gelu", "gelu_tanh", "silu"):
        return MLPBody(dim, inter, kind, bias)
    if kind == "swiglu":
        return GLUBody(dim, inter, "silu", bias)
    if kind == "geglu":
        return GLUBody(dim, inter, "gelu", bias)
    if kind == "packed_swiglu":
        return PackedGLUBody(dim, inter, "silu", bias)
    raise ValueError(kind)


# ----------------------------------------------------------------------------------------------- layer
class CorpusMoE(nn.Module):
    def __init__(self, dim: int, inter: int, experts: int, k: int, router: str, dispatch: str, combine: str,
                 body: str, bias: bool):
        super().__init__()
        self.num_experts = experts
        self.k = 1 if router == "argmax" else k
        self.router_kind = router
        self.dispatch = dispatch
        self.combine = combine
        self.gate = nn.Linear(dim, experts, bias=router == "sigmoid_sum")
        self.experts = nn.ModuleList([make_body(body, dim, inter, bias) for _ in range(experts)])

    def route(self, x):
        logits = self.gate(x)
        r = self.router_kind
        if r == "logits_softmax":  # top-k over raw logits, softmax over the chosen ones
            w, idx = torch.topk(logits, self.k, dim=-1)
            return F.softmax(w, dim=-1), idx
        if r == "argmax":  # Switch Transformer: top-1 with its probability
            p = F.softmax(logits, dim=-1)
            w, idx = p.max(dim=-1, keepdim=True)
            return w, idx
        if r.startswith("sigmoid"):
            p = torch.sigmoid(logits)
        else:
            p = F.softmax(logits.float(), dim=-1).to(x.dtype)  # HF-style Cast to float and back
        w, idx = torch.topk(p, self.k, dim=-1)
        if r == "softmax_softmax":
            w = F.softmax(w, dim=-1)
        elif r in ("softmax_sum", "sigmoid_sum"):
            w = w / w.sum(dim=-1, keepdim=True)
        elif r == "softmax_sum_eps":
            w = w / (w.sum(dim=-1, keepdim=True) + 1e-20)
        elif r == "softmax_scaled":
            w = w * 2.5
        elif r == "softmax_sort_sum":  # a full sort, cut to the first k
            w_all, idx_all = torch.sort(p, dim=-1, descending=True)
            w, idx = w_all[:, : self.k], idx_all[:, : self.k]
            w = w / w.sum(dim=-1, keepdim=True)
        elif r == "softmax_sum_noop_slice":  # no-op slices (x[:, :H], w[:, :k]) as some modeling code has
            w = w[:, : self.k] / w[:, : self.k].sum(dim=-1, keepdim=True)
        return w, idx

    def forward(self, x):
        w, idx = self.route(x)
        d = self.dispatch
        if d == "where_index_add":
            return self.where_index_add(x, w, idx)
        if d == "mask_index":
            return self.mask_index(x, w, idx)
        if d == "onehot_where":
            return self.onehot_where(x, w, idx)
        if d == "sort_slice":
            return self.sort_slice(x, w, idx)
        if d == "dense_stack":
            return self.dense_stack(x, w, idx)
        if d == "dense_gather":
            return self.dense_gather(x, w, idx)
        if d == "capacity":
            return self.capacity(x, w, idx)
        raise ValueError(d)

    def where_index_add(self, x, w, idx):
        out = torch.zeros_like(x)
        if self.combine == "after":
            buf = torch.zeros(x.shape[0] * self.k, x.shape[1], dtype=x.dtype)
            for e, expert in enumerate(self.experts):
                tok, slot = torch.where(idx == e)
                buf = buf.index_copy(0, tok * self.k + slot, expert(x[tok]))
            return (buf.view(-1, self.k, x.shape[1]) * w.unsqueeze(-1)).sum(dim=1)
        for e, expert in enumerate(self.experts):
            tok, slot = torch.where(idx == e)
            out = out.index_add(0, tok, expert(x[tok]) * w[tok, slot].unsqueeze(-1))
        return out

    def mask_index(self, x, w, idx):
        """Boolean-mask indexing: rows = x[mask] (NonZero + GatherND); results return by index_put
        (torch 1.13 cannot export `out[mask] += y` with a boolean mask: its Expand is wrong)."""
        out = torch.zeros_like(x)
        if self.combine == "after":
            buf = torch.zeros(x.shape[0] * self.k, x.shape[1], dtype=x.dtype)
            for e, expert in enumerate(self.experts):
                pos = (idx == e).reshape(-1).nonzero().squeeze(-1)  # (token, slot) pairs of expert e
                buf = buf.index_put((pos,), expert(x[pos // self.k]))
            return (buf.view(-1, self.k, x.shape[1]) * w.unsqueeze(-1)).sum(dim=1)
        for e, expert in enumerate(self.experts):
            sel = idx == e
            rows = sel.any(dim=-1)
            we = (w * sel.to(w.dtype)).sum(dim=-1)
            tok = rows.nonzero().squeeze(-1)
            out = out.index_put((tok,), expert(x[rows]) * we[rows].unsqueeze(-1), accumulate=True)
        return out

    def onehot_where(self, x, w, idx):
        out = torch.zeros_like(x)
        mask = F.one_hot(idx, num_classes=self.num_experts).permute(2, 1, 0)
        for e, expert in enumerate(self.experts):
            slot, tok = torch.where(mask[e])
            y = expert(x[tok])
            if self.combine == "before":
                y = y * w[tok, slot, None]
                out.index_add_(0, tok, y)
            else:
                out.index_add_(0, tok, y * w[tok, slot].unsqueeze(1))
        return out

    def sort_slice(self, x, w, idx):
        """Sort the (token, slot) pairs by expert, run each expert on its contiguous slice, unsort."""
        flat = idx.reshape(-1)
        order = torch.argsort(flat)
        tok_sorted = order // self.k
        counts = F.one_hot(flat, self.num_experts).sum(dim=0)  # histogram (bincount does not export)
        ends = torch.cumsum(counts, dim=0)
        xs = x[tok_sorted]
        outs: List[torch.Tensor] = []
        start = 0
        for e, expert in enumerate(self.experts):
            end = int(ends[e])
            outs.append(expert(xs[start:end]))
            start = end
        ys = torch.cat(outs, dim=0)
        unsorted = torch.empty_like(ys)
        unsorted[order] = ys
        return (unsorted.view(-1, self.k, x.shape[1]) * w.unsqueeze(-1)).sum(dim=1)

    def capacity(self, x, w, idx):
        """GShard / Switch capacity: each expert takes at most (T * k) // E of the (token, slot) pairs, in
        token order; the weights of the others are zeroed (those tokens are dropped by that expert)."""
        cap = (x.shape[0] * self.k) // self.num_experts
        onehot = F.one_hot(idx.reshape(-1), self.num_experts)  # [T*k, E]
        position = torch.cumsum(onehot, dim=0) * onehot        # 1-based place in the expert's queue
        keep = ((position <= cap) & (onehot > 0)).sum(dim=-1).view(-1, self.k).to(w.dtype)
        return self.where_index_add(x, w * keep, idx)

    def dense_stack(self, x, w, idx):
        """Every expert on every token, weighted by the scattered top-k weights (zeros elsewhere)."""
        ys = torch.stack([expert(x) for expert in self.experts], dim=1)  # [T, E, H]
        dense_w = torch.zeros(x.shape[0], self.num_experts, dtype=x.dtype).scatter(1, idx, w)
        if self.combine == "after":
            return torch.einsum("te,teh->th", dense_w, ys)
        return (ys * dense_w.unsqueeze(-1)).sum(dim=1)

    def dense_gather(self, x, w, idx):
        ys = torch.stack([expert(x) for expert in self.experts], dim=1)  # [T, E, H]
        picked = torch.gather(ys, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[1]))  # [T, k, H]
        return (picked * w.unsqueeze(-1)).sum(dim=1)


class Param3dMoE(nn.Module):
    """Experts as 3-D parameters (one tensor per projection for all experts), the way fused-MoE codebases
    store them: "matmul" runs every expert on every token (torch.matmul over the expert axis) and weights
    by the scattered top-k weights; "gather" picks each (token, slot)'s matrices W[idx] and multiplies."""

    def __init__(self, dim, inter, experts, k, router, dispatch, body, bias):
        super().__init__()
        self.k, self.num_experts, self.dispatch, self.body = k, experts, dispatch, body
        self.router = CorpusMoE(dim, inter, experts, k, router, "where_index_add", "before", "relu", False)
        self.router.experts = nn.ModuleList()  # only its gate and route() are used
        self.gated, self.has_bias = body in ("swiglu", "geglu"), bias  # flags, not Optional: scriptable
        self.w1 = nn.Parameter(torch.randn(experts, dim, inter) / dim ** 0.5)       # [E, H, I]
        self.w3 = nn.Parameter(torch.randn(experts, dim, inter) / dim ** 0.5)       # used when gated
        self.w2 = nn.Parameter(torch.randn(experts, inter, dim) / inter ** 0.5)     # [E, I, H]
        self.b1 = nn.Parameter(torch.randn(experts, 1, inter) * 0.1)               # used with biases

    def act(self, h, u):
        if self.body in ("swiglu", "silu"):
            h = F.silu(h)
        elif self.body in ("geglu", "gelu"):
            h = F.gelu(h)
        else:
            h = torch.relu(h)
        return h * u if self.gated else h

    def forward(self, x):
        w, idx = self.router.route(x)
        if self.dispatch == "param3d_einsum":  # every expert by einsum, combined by einsum
            h = torch.einsum("th,ehi->eti", x, self.w1)
            if self.has_bias:
                h = h + self.b1
            u = torch.einsum("th,ehi->eti", x, self.w3) if self.gated else h
            y = torch.einsum("eti,eih->eth", self.act(h, u), self.w2)
            dense_w = torch.zeros(x.shape[0], self.num_experts, dtype=x.dtype).scatter(1, idx, w)
            return torch.einsum("te,eth->th", dense_w, y)
        if self.dispatch == "param3d_matmul":
            h = torch.matmul(x.unsqueeze(0), self.w1)                 # [E, T, I]
            if self.has_bias:
                h = h + self.b1
            u = torch.matmul(x.unsqueeze(0), self.w3) if self.gated else h
            y = torch.matmul(self.act(h, u), self.w2)                 # [E, T, H]
            dense_w = torch.zeros(x.shape[0], self.num_experts, dtype=x.dtype).scatter(1, idx, w)
            return (y * dense_w.t().unsqueeze(-1)).sum(dim=0)
        # param3d_gather: [T, k, 1, H] @ [T, k, H, I]
        xs = x[:, None, None, :]
        h = torch.matmul(xs, self.w1[idx]).squeeze(2)                # [T, k, I]
        if self.has_bias:
            h = h + self.b1.squeeze(1)[idx]
        u = torch.matmul(xs, self.w3[idx]).squeeze(2) if self.gated else h
        y = torch.matmul(self.act(h, u).unsqueeze(2), self.w2[idx]).squeeze(2)  # [T, k, H]
        return (y * w.unsqueeze(-1)).sum(dim=1)


class CorpusModel(nn.Module):
    """Tokens [batch, seq, dim] -> `layers` residual MoE layers -> [batch, seq, dim]."""

    def __init__(self, layers: int, **kw):
        super().__init__()
        if kw["dispatch"].startswith("param3d"):
            kw.pop("combine")
            self.moes = nn.ModuleList([Param3dMoE(**kw) for _ in range(layers)])
        else:
            self.moes = nn.ModuleList([CorpusMoE(**kw) for _ in range(layers)])

    def forward(self, hidden):
        b, s, d = hidden.shape
        x = hidden.reshape(-1, d)
        for moe in self.moes:
            x = x + moe(x)
        return x.reshape(b, s, d)


# --------------------------------------------------------------------------------------------- variants
# name: (router, dispatch, combine, body, bias, experts, k, layers). Chosen to cover every value of every
# axis several times, not the full product.
VARIANTS = {
    "v01": ("softmax_softmax", "where_index_add", "before", "relu", True, 8, 2, 1),
    "v02": ("softmax_sum", "where_index_add", "before", "swiglu", False, 8, 2, 1),
    "v03": ("softmax_softmax", "mask_index", "before", "relu", True, 16, 4, 1),
    "v04": ("softmax_softmax", "mask_index", "after", "relu", True, 8, 2, 1),
    "v05": ("softmax_sum", "onehot_where", "before", "gelu", True, 8, 2, 1),
    "v06": ("softmax_sum", "onehot_where", "after", "geglu", False, 4, 2, 1),
    "v07": ("logits_softmax", "where_index_add", "before", "silu", False, 8, 2, 1),
    "v08": ("softmax_none", "where_index_add", "after", "gelu_tanh", True, 8, 2, 1),
    "v09": ("sigmoid_sum", "where_index_add", "before", "swiglu", False, 8, 2, 1),
    "v10": ("softmax_sum_eps", "onehot_where", "before", "swiglu", False, 8, 2, 1),
    "v11": ("softmax_scaled", "where_index_add", "before", "relu", False, 8, 2, 1),
    "v12": ("argmax", "where_index_add", "before", "relu", True, 8, 1, 1),
    "v13": ("argmax", "mask_index", "before", "gelu", True, 4, 1, 1),
    "v14": ("softmax_softmax", "sort_slice", "after", "relu", True, 8, 2, 1),
    "v15": ("softmax_sum", "sort_slice", "after", "swiglu", False, 8, 2, 1),
    "v16": ("softmax_softmax", "dense_stack", "before", "relu", True, 8, 2, 1),
    "v17": ("softmax_sum", "dense_stack", "after", "swiglu", False, 8, 2, 1),
    "v18": ("softmax_softmax", "dense_gather", "after", "gelu", True, 8, 2, 1),
    "v19": ("softmax_sum", "where_index_add", "before", "packed_swiglu", False, 8, 2, 1),
    "v20": ("softmax_sum", "onehot_where", "before", "packed_swiglu", True, 4, 2, 1),
    "v21": ("softmax_softmax", "where_index_add", "before", "relu", True, 8, 2, 2),
    "v22": ("softmax_sum", "onehot_where", "before", "swiglu", False, 8, 2, 3),
    "v23": ("softmax_none", "mask_index", "before", "silu", False, 8, 2, 1),
    "v24": ("logits_softmax", "onehot_where", "after", "swiglu", False, 8, 2, 1),
    "v25": ("sigmoid_sum", "mask_index", "after", "relu", True, 8, 2, 1),
    "v26": ("softmax_scaled", "dense_stack", "before", "geglu", True, 4, 2, 1),
    "v27": ("softmax_sum_eps", "where_index_add", "after", "gelu", False, 8, 2, 1),
    "v28": ("softmax_softmax", "where_index_add", "before", "relu", True, 16, 4, 1),
    "v29": ("argmax", "dense_gather", "after", "silu", False, 8, 1, 1),
    "v30": ("softmax_sum", "mask_index", "before", "geglu", True, 8, 2, 2),
    "v31": ("logits_softmax", "dense_stack", "after", "relu", False, 8, 2, 1),
    "v32": ("softmax_softmax", "onehot_where", "before", "gelu_tanh", True, 4, 1, 1),
    "v33": ("softmax_sum", "capacity", "before", "swiglu", False, 8, 2, 1),
    "v34": ("argmax", "capacity", "before", "relu", True, 8, 1, 1),
    "v35": ("softmax_sum", "param3d_matmul", "after", "swiglu", False, 8, 2, 1),
    "v36": ("softmax_softmax", "param3d_matmul", "after", "relu", True, 4, 2, 1),
    "v37": ("softmax_sum", "param3d_gather", "after", "swiglu", False, 8, 2, 1),
    "v38": ("sigmoid_sum", "param3d_gather", "after", "gelu", True, 8, 2, 1),
    "v39": ("softmax_sum", "param3d_einsum", "after", "swiglu", False, 8, 2, 1),
    "v40": ("softmax_softmax", "param3d_einsum", "after", "relu", True, 8, 2, 1),
    "v41": ("softmax_sum_noop_slice", "onehot_where", "before", "swiglu", False, 8, 2, 1),
    "v42": ("softmax_sort_sum", "where_index_add", "before", "gelu", True, 8, 2, 1),
}
# Variants that must stay unfused, with this word in the reason.
EXPECT_UNFUSED = {"capacity": "capacity"}
# Exports of each variant: (suffix, scripted, opset). Tracing bakes the routing of the example input into
# the graph for sort_slice (int(ends[e])), so that dispatch is only scripted.
EXPORTS = [("script17", "script", 17), ("trace13", "trace", 13)]
# torch 2.x (PyPI, in a venv): its default exporter (dynamo=True, torch.export) and the TorchScript one.
EXPORTS_TORCH2 = [("dynamo18", "dynamo", 18), ("legacy17", "trace", 17)]


def describe(name):
    router, dispatch, combine, body, bias, experts, k, layers = VARIANTS[name]
    d = dict(router=router, dispatch=dispatch, combine=combine, body=body, bias=bias, experts=experts,
             k=1 if router == "argmax" else k, layers=layers)
    if dispatch in EXPECT_UNFUSED:
        d["expect_unfused"] = EXPECT_UNFUSED[dispatch]
    return d


def build(name, seed):
    d = describe(name)
    torch.manual_seed(seed)
    dim, inter = 16, 24
    model = CorpusModel(d["layers"], dim=dim, inter=inter, experts=d["experts"], k=d["k"], router=d["router"],
                        dispatch=d["dispatch"], combine=d["combine"], body=d["body"], bias=d["bias"]).eval()
    # Larger router weights so routing is decided, not a near-tie that rounding could flip.
    with torch.no_grad():
        for moe in model.moes:
            (moe.router.gate if hasattr(moe, "router") else moe.gate).weight.mul_(3.0)
    return model, dim


def routes_everywhere(model, x):
    """True if the example input sends tokens to every expert of every layer (tracing only sees those)."""
    with torch.no_grad():
        h = x.reshape(-1, x.shape[-1])
        for moe in model.moes:
            _, idx = (moe.router if hasattr(moe, "router") else moe).route(h)
            if len(torch.unique(idx)) != moe.num_experts:
                return False
            h = h + moe(h)
    return True


def export_variant(name, out_dir, seed):
    model, dim = build(name, seed)
    d = describe(name)
    gen = torch.Generator().manual_seed(seed)
    example = torch.randn(2, 24, dim, generator=gen)  # 48 tokens: every expert is hit (checked)
    test = torch.randn(3, 5, dim, generator=gen)       # 15 tokens: another batch and sequence length
    assert routes_everywhere(model, example), f"{name}: the example input does not reach every expert"
    with torch.no_grad():
        expected = model(test).numpy()
    written = []
    torch2 = int(torch.__version__.split(".")[0]) >= 2
    for suffix, mode, opset in EXPORTS_TORCH2 if torch2 else EXPORTS:
        if mode == "trace" and d["dispatch"] == "sort_slice":
            continue
        full = f"{name}_{d['dispatch']}_{d['router']}_{d['body']}_{suffix}"
        path = os.path.join(out_dir, full + ".onnx")
        axes = {"hidden": {0: "batch", 1: "seq"}, "out": {0: "batch", 1: "seq"}}
        try:
            if mode == "dynamo":
                batch, seq = torch.export.Dim("batch", max=64), torch.export.Dim("seq", max=4096)
                torch.onnx.export(model, (example,), path, opset_version=opset, input_names=["hidden"],
                                  output_names=["out"], dynamo=True, external_data=False,
                                  dynamic_shapes={"hidden": {0: batch, 1: seq}})
            else:
                exported = torch.jit.script(model) if mode == "script" else model
                kw = {"dynamo": False} if torch2 else {}
                torch.onnx.export(exported, (example,), path, opset_version=opset, input_names=["hidden"],
                                  output_names=["out"], dynamic_axes=axes, **kw)
        except Exception as e:  # an exporter that cannot take this variant: say so, keep going
            print(f"{full}: export failed: {str(e).splitlines()[0][:200]}", file=sys.stderr)
            continue
        np.savez(os.path.join(out_dir, full + ".inputs.npz"), hidden=test.numpy())
        np.savez(os.path.join(out_dir, full + ".expected.npz"), out=expected)
        how = {"script": "torch.jit.script", "trace": "torch.jit.trace", "dynamo": "dynamo=True"}[mode]
        written.append(dict(name=full, variant=name, export=f"{how} (torch {torch.__version__.split('+')[0]}), opset {opset}", **d))
    return written


def export_large(out_dir):
    """Dense "every expert on every token" exports at E=8, k=2, H=I=512 for bench/fusion.py (too big to
    commit): the stack + scattered-weights form and the gather form, scripted."""
    os.makedirs(out_dir, exist_ok=True)
    for dispatch, body in (("dense_stack", "relu"), ("dense_gather", "swiglu")):
        torch.manual_seed(7)
        model = CorpusModel(1, dim=512, inter=512, experts=8, k=2, router="softmax_sum", dispatch=dispatch,
                            combine="before", body=body, bias=False).eval()
        example = torch.randn(1, 64, 512)
        path = os.path.join(out_dir, f"large_{dispatch}_{body}_e8_k2_h512.onnx")
        torch.onnx.export(torch.jit.script(model), (example,), path, opset_version=17, input_names=["hidden"],
                          output_names=["out"], dynamic_axes={"hidden": {0: "batch", 1: "seq"}, "out": {0: "batch", 1: "seq"}})
        print(path, file=sys.stderr)
    # Compile-time scaling: the same small layer stacked 1, 4 and 16 times.
    for layers in (1, 4, 16):
        torch.manual_seed(8)
        model = CorpusModel(layers, dim=64, inter=128, experts=8, k=2, router="softmax_sum", dispatch="onehot_where",
                            combine="before", body="swiglu", bias=False).eval()
        path = os.path.join(out_dir, f"layers{layers:02d}_onehot_where_swiglu_h64.onnx")
        torch.onnx.export(torch.jit.script(model), (torch.randn(1, 64, 64),), path, opset_version=17,
                          input_names=["hidden"], output_names=["out"],
                          dynamic_axes={"hidden": {0: "batch", 1: "seq"}, "out": {0: "batch", 1: "seq"}})
        print(path, file=sys.stderr)


def update_manifest(out_dir, entries):
    """Adds (or replaces, by name) entries in OUT_DIR/manifest.json, which the tests read."""
    path = os.path.join(out_dir, "manifest.json")
    manifest = json.load(open(path)) if os.path.exists(path) else []
    names = {e["name"] for e in entries}
    manifest = sorted([m for m in manifest if m["name"] not in names] + list(entries), key=lambda m: m["name"])
    with open(path, "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest


def simplify(out_dir, manifest, suffixes=("script17", "dynamo18")):
    """Users simplify before deploying: each scripted / dynamo export again, through onnxslim (PyPI)."""
    import shutil
    import onnx
    import onnxslim
    added = []
    for m in manifest:
        if not m["name"].endswith(suffixes):
            continue
        name = m["name"] + "_slim"
        try:
            model = onnxslim.slim(os.path.join(out_dir, m["name"] + ".onnx"))
        except Exception as e:
            print(f"{name}: onnxslim failed: {str(e).splitlines()[0][:200]}", file=sys.stderr)
            continue
        onnx.save(model, os.path.join(out_dir, name + ".onnx"))
        for kind in ("inputs", "expected"):
            shutil.copy(os.path.join(out_dir, f"{m['name']}.{kind}.npz"), os.path.join(out_dir, f"{name}.{kind}.npz"))
        added.append(dict(m, name=name, export=m["export"] + f", onnxslim {onnxslim.__version__}"))
    return [m for m in manifest if m["name"] not in {a["name"] for a in added}] + added


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "corpus"))
    ap.add_argument("--only", default=None)
    ap.add_argument("--simplify", action="store_true", help="add onnxslim'd copies of the scripted/dynamo exports")
    ap.add_argument("--large", metavar="DIR", help="write the benchmark-sized dense exports (not committed) to DIR")
    args = ap.parse_args()
    if args.large:
        return export_large(args.large)
    os.makedirs(args.out, exist_ok=True)
    if args.simplify:
        update_manifest(args.out, simplify(args.out, update_manifest(args.out, [])))
        return
    names = [args.only] if args.only else list(VARIANTS)
    for name in names:
        entries = export_variant(name, args.out, seed=100 + list(VARIANTS).index(name))
        update_manifest(args.out, entries)
        print(f"{name}: {', '.join(e['name'] for e in entries)}", file=sys.stderr)


if __name__ == "__main__":
    main()
