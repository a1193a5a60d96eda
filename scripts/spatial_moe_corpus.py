#!/usr/bin/python3
"""Independently written per-block image MoE variants (random weights), exported as users would, with
PyTorch's outputs on images of another size: the corpus the spatial-MoE fusion is tested on
(tests/python/test_spatial_moe.py). Each variant writes the same function in its own way.

Writes tests/fixtures/spatial/corpus/<name>.onnx and <name>.npz (image, expected; fused: 0/1 says
whether Switchyard is expected to fuse it).
Run with Debian's torch: /usr/bin/python3 scripts/spatial_moe_corpus.py (torch.onnx.export's tracer);
with PyPI torch 2.x in a venv: python scripts/spatial_moe_corpus.py --dynamo (the dynamo exporter,
written as <name>_dynamo).
"""
import argparse
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "spatial", "corpus")


def conv_stack(cin, hidden, cout, kernels):
    layers = []
    chans = [cin] + [hidden] * (len(kernels) - 1) + [cout]
    for i, k in enumerate(kernels):
        layers.append(nn.Conv2d(chans[i], chans[i + 1], k, padding=k // 2))
    return nn.ModuleList(layers)


def run_stack(layers, x):
    for i, conv in enumerate(layers):
        x = conv(x)
        if i + 1 < len(layers):
            x = F.relu(x)
    return x


class Variant(nn.Module):
    """Router: mean-pool per block, 1x1 conv to E logits. Experts: conv stacks (+ PixelShuffle)."""

    def __init__(self, cin=1, experts=4, hidden=8, kernels=(3, 3), scale=2, block=8, k=1):
        super().__init__()
        self.e, self.scale, self.block, self.k = experts, scale, block, k
        self.gate = nn.Conv2d(cin, experts, 1)
        self.experts = nn.ModuleList([conv_stack(cin, hidden, cin * scale * scale, kernels) for _ in range(experts)])

    def weights(self, x):
        logits = self.gate(F.avg_pool2d(x, self.block))
        if self.k == 1:
            return F.one_hot(logits.argmax(1), self.e).permute(0, 3, 1, 2).float()
        vals, idx = logits.topk(self.k, dim=1)
        return torch.zeros_like(logits).scatter(1, idx, torch.softmax(vals, 1))

    def expert(self, e, x):
        y = run_stack(self.experts[e], x)
        return F.pixel_shuffle(y, self.scale) if self.scale > 1 else y


class MaskAfter(Variant):
    """expert(x) * mask, mask upsampled with F.interpolate, experts summed in a Python loop."""

    def forward(self, x):
        m = F.interpolate(self.weights(x), scale_factor=float(self.block * self.scale), mode="nearest")
        out = None
        for e in range(self.e):
            term = self.expert(e, x) * m[:, e:e + 1]
            out = term if out is None else out + term
        return out


class SliceThenResize(Variant):
    """Each expert's weight channel sliced first, then upsampled on its own (sizes from the image)."""

    def forward(self, x):
        w = self.weights(x)
        out = 0
        for e in range(self.e):
            m = F.interpolate(w[:, e:e + 1], scale_factor=float(self.block * self.scale), mode="nearest")
            out = out + m * self.expert(e, x)
        return out


class StackReduceSum(Variant):
    """All experts stacked on a new axis, multiplied by the mask, summed over that axis."""

    def forward(self, x):
        m = F.interpolate(self.weights(x), scale_factor=float(self.block * self.scale), mode="nearest")
        ys = torch.stack([self.expert(e, x) for e in range(self.e)], dim=1)  # [N, E, C, H, W]
        return (ys * m.unsqueeze(2)).sum(1)


class ExpandReshapeMask(Variant):
    """Mask upsampled by broadcasting each block over a new axis pair and reshaping (a Kronecker product)."""

    def forward(self, x):
        f = self.block * self.scale
        w = self.weights(x)
        n, e, hb, wb = w.shape
        m = w[:, :, :, None, :, None].expand(n, e, hb, f, wb, f).reshape(n, e, hb * f, wb * f)
        out = 0
        for i in range(self.e):
            out = out + m[:, i:i + 1] * self.expert(i, x)
        return out


VARIANTS = {
    # name: (class, constructor arguments, fused?)
    "mask_after_x2": (MaskAfter, dict(), True),
    "slice_then_resize_rgb_top2": (SliceThenResize, dict(cin=3, experts=6, k=2, kernels=(5, 1, 3)), True),
    "same_resolution_block16": (MaskAfter, dict(experts=3, scale=1, block=16, kernels=(3, 3, 3, 3)), True),
    "single_layer_experts": (SliceThenResize, dict(experts=5, scale=4, kernels=(3,)), True),
    "stack_reducesum": (StackReduceSum, dict(), True),
    "expand_reshape_mask": (ExpandReshapeMask, dict(), False),
}


DYNAMO = ("mask_after_x2", "slice_then_resize_rgb_top2", "stack_reducesum", "same_resolution_block16")


def export(model, example, path, dynamo):
    if not dynamo:
        torch.onnx.export(model, example, path, input_names=["image"], output_names=["out"], opset_version=13,
                          dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "out": {0: "n", 2: "oh", 3: "ow"}})
        return
    dims = {0: torch.export.Dim("n", max=64), 2: torch.export.Dim("h", min=16, max=4096),
            3: torch.export.Dim("w", min=16, max=4096)}
    torch.onnx.export(model, (example,), path, input_names=["image"], output_names=["out"], dynamo=True,
                      dynamic_shapes={"x": dims})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dynamo", action="store_true", help="torch 2.x: export a subset with dynamo=True")
    args = parser.parse_args()
    torch.manual_seed(7)
    os.makedirs(OUT, exist_ok=True)
    for name, (cls, kwargs, fused) in VARIANTS.items():
        model = cls(**kwargs).eval()
        if args.dynamo and name not in DYNAMO:
            continue
        cin, block = model.experts[0][0].in_channels, model.block
        example = torch.rand(1, cin, 4 * block, 4 * block)
        test = torch.rand(2, cin, 3 * block, 5 * block)
        name = name + ("_dynamo" if args.dynamo else "")
        path = os.path.join(OUT, name + ".onnx")
        with torch.no_grad():
            export(model, example, path, args.dynamo)
            expected = model(test)
        np.savez(os.path.join(OUT, name + ".npz"), image=test.numpy(), expected=expected.numpy(), fused=np.int64(fused))
        print(name, tuple(expected.shape))


if __name__ == "__main__":
    main()
