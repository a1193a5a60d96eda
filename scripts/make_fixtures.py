#!/usr/bin/python3
"""Exports the test fixtures: models in the ways users export them, fixed inputs, PyTorch's outputs.

For each fixture NAME it writes tests/fixtures/NAME.onnx, NAME.inputs.npz and NAME.expected.npz,
so that the tests compare Switchyard with PyTorch without needing torch.
Run with Debian's torch: /usr/bin/python3 scripts/make_fixtures.py
"""
import io
import os
import sys
import warnings
from typing import List

import numpy as np
import torch

from moe_models import MLP, MixtralBlock, SeedClassifier, SmallCNN, TinyAttention

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))
from switchyard_torch import SwitchyardMoE  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures")
warnings.filterwarnings("ignore")


def export(name, model, inputs, input_names, output_names, dynamic_axes, opset=17, script=True, compressed=False,
           custom_opsets=None):
    model.eval()
    with torch.no_grad():
        expected = model(*inputs)
    if isinstance(expected, torch.Tensor):
        expected = (expected,)
    exported = torch.jit.script(model) if script else model
    path = os.path.join(OUT, name + ".onnx")
    torch.onnx.export(exported, tuple(inputs), path, opset_version=opset, input_names=input_names,
                      output_names=output_names, dynamic_axes=dynamic_axes, custom_opsets=custom_opsets or {})
    save = np.savez_compressed if compressed else np.savez
    save(os.path.join(OUT, name + ".inputs.npz"), **{n: t.numpy() for n, t in zip(input_names, inputs)})
    save(os.path.join(OUT, name + ".expected.npz"), **{n: t.numpy() for n, t in zip(output_names, expected)})
    print(f"{name}: {os.path.getsize(path)} bytes, opset {opset}, {'script' if script else 'trace'}")


def images(batch, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 1, 28, 28, generator=g)


def export_deepseek_moe_node():
    """The helper's DeepSeek-V3-style node: sigmoid scores, grouped top-k (top-2-sum group scores), a
    selection-only bias, scaled weights, and a gated shared expert."""
    torch.manual_seed(11)
    moe = SwitchyardMoE(hidden=24, inter=40, num_experts=8, k=3, activation="silu", gated=True, scoring="sigmoid",
                        normalize="sum", n_group=4, topk_group=2, group_score="top2sum", routed_scaling_factor=2.5,
                        selection_bias=True, shared_inter=32, shared_gate=True)
    with torch.no_grad():
        moe.selection_bias.normal_(0, 0.2)
        for p in (moe.router_b, moe.b1, moe.b2, moe.b3):
            p.normal_(0, 0.1)
    tokens = torch.randn(23, 24, generator=torch.Generator().manual_seed(12))
    export("switchyard_moe_deepseek", moe, [tokens], ["x"], ["y"], {"x": {0: "tokens"}, "y": {0: "tokens"}},
           script=False, custom_opsets={"ai.switchyard": 1})


class ListMoE(torch.nn.Module):
    """A scripted MoE that collects expert outputs in Python lists, appending only for experts that got
    tokens: exports SequenceEmpty / SequenceInsert inside If branches / ConcatFromSequence."""

    def __init__(self):
        super().__init__()
        self.gate = torch.nn.Linear(16, 8, bias=False)
        self.experts = torch.nn.ModuleList([torch.nn.Sequential(torch.nn.Linear(16, 24), torch.nn.ReLU(),
                                                                torch.nn.Linear(24, 16)) for _ in range(8)])

    def forward(self, x):
        p = torch.softmax(self.gate(x), -1)
        w, idx = torch.topk(p, 2, -1)
        w = w / w.sum(-1, keepdim=True)
        outs: List[torch.Tensor] = []
        toks: List[torch.Tensor] = []
        for e, expert in enumerate(self.experts):
            tok, slot = torch.where(idx == e)
            if tok.numel() > 0:
                outs.append(expert(x[tok]) * w[tok, slot].unsqueeze(-1))
                toks.append(tok)
        return torch.zeros_like(x).index_add(0, torch.cat(toks), torch.cat(outs))


def export_list_moe():
    """The expected outputs are ONNX Runtime's on the same file, not PyTorch's: torch 1.13's exporter
    returns the list as it was before the loop from the If's else branch, so the graph itself differs
    from the module (ONNX Runtime and Switchyard agree on the graph)."""
    import onnxruntime  # the pip Python of `make deps`: run this part with it, torch from Debian
    torch.manual_seed(5)
    model = ListMoE().eval()
    path = os.path.join(OUT, "list_moe_script.onnx")
    torch.onnx.export(torch.jit.script(model), (torch.randn(48, 16),), path, opset_version=17, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "tokens"}})
    x = np.random.default_rng(6).standard_normal((15, 16)).astype(np.float32)
    np.savez(os.path.join(OUT, "list_moe_script.inputs.npz"), x=x)
    y = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.savez(os.path.join(OUT, "list_moe_script.expected.npz"), y=y)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(1234)
    batch_axes = {"image": {0: "batch"}, "logits": {0: "batch"}}

    # The seed classifier's architecture and variants (expert count, top-k, widths), scripted.
    export("seed_e8_k2_script", SeedClassifier(), [images(7, 1)], ["image"], ["logits"], batch_axes)
    export("seed_e4_k1_w32_script", SeedClassifier(dim=32, num_experts=4, k=1, hidden=48), [images(9, 2)],
           ["image"], ["logits"], batch_axes, compressed=True)
    export("seed_e16_k4_w8_script", SeedClassifier(dim=8, num_experts=16, k=4, hidden=24), [images(33, 3)],
           ["image"], ["logits"], batch_axes)
    # Older opset: Squeeze/Unsqueeze/Split with attributes, Softmax with 2-D coercion semantics.
    export("seed_e8_k2_script_opset13", SeedClassifier(), [images(6, 4)], ["image"], ["logits"], batch_axes,
           opset=13)
    # The same model exported by tracing.
    export("seed_e8_k2_trace", SeedClassifier(), [images(12, 5)], ["image"], ["logits"], batch_axes, script=False)

    # Mixtral-style sparse block: softmax router, top-k, renormalise, one_hot / where, SwiGLU, index_add_.
    hidden = torch.randn(2, 5, 32, generator=torch.Generator().manual_seed(6))
    export("mixtral_block_script", MixtralBlock(), [hidden], ["hidden"], ["out"],
           {"hidden": {0: "batch", 1: "seq"}, "out": {0: "batch", 1: "seq"}})
    export("mixtral_block_trace", MixtralBlock(dim=16, inter=24, num_experts=8, k=2), [hidden[:, :, :16].contiguous()],
           ["hidden"], ["out"], {"hidden": {0: "batch", 1: "seq"}, "out": {0: "batch", 1: "seq"}}, script=False)

    # Dense models: MLP, small CNN, LayerNorm + attention basics.
    export("mlp_trace", MLP(), [images(4, 7)], ["image"], ["logprobs"], {"image": {0: "batch"}}, script=False,
           opset=11)
    cnn = SmallCNN()
    for bn in (cnn.bn1, cnn.bn2):  # non-trivial running statistics
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 1.5)
    export("small_cnn_trace", cnn, [images(3, 8)], ["image"], ["logprobs"], {"image": {0: "batch"}}, script=False)
    # The Switchyard MoE node exported directly by the PyTorch helper (python/switchyard_torch.py).
    moe = SwitchyardMoE(hidden=24, inter=40, num_experts=6, k=2, activation="silu", gated=True, normalize="sum")
    with torch.no_grad():
        for p in (moe.router_b, moe.b1, moe.b2, moe.b3):
            p.normal_(0, 0.1)
    tokens = torch.randn(19, 24, generator=torch.Generator().manual_seed(10))
    export("switchyard_moe_node", moe, [tokens], ["x"], ["y"], {"x": {0: "tokens"}, "y": {0: "tokens"}}, script=False,
           custom_opsets={"ai.switchyard": 1})
    export_deepseek_moe_node()
    x = torch.randn(2, 6, 32, generator=torch.Generator().manual_seed(9))
    export("tiny_attention_trace", TinyAttention(), [x], ["x"], ["y"], {"x": {0: "batch", 1: "seq"}}, script=False)
    try:
        export_list_moe()
    except ImportError:
        print("list_moe_script: needs onnxruntime next to torch; skipped")


if __name__ == "__main__":
    main()
