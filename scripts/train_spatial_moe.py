#!/usr/bin/python3
"""Trains the block-routed x4 upsampler (scripts/spatial_moe_models.py) on Fashion-MNIST mosaics and
exports it in the three forms users write, plus what the benchmark and the tests need.

Training data: 64x64 high-resolution mosaics of four 28x28 Fashion-MNIST images (each padded to 32x32);
the low-resolution input is their 4x4 average. Routing is trained with a straight-through top-1 (hard
one-hot forward, softmax gradient), SPEC.md's importance loss and a Switch-Transformer load loss, so
routing is learned, not random, and spread over the experts.

Writes
  models/spatial_moe/upsampler_x4_{dense,blocks,native}[_top2].onnx  the model, three export forms
  models/spatial_moe/upsampler_x4.json       PSNR of the model and of bicubic on the test mosaics
  models/spatial_moe/per_block/router.onnx, expert_<e>.onnx  the per-block workaround's models (bench)
  tests/fixtures/spatial/*.npz               inputs of other sizes and PyTorch's outputs
  examples/images/fashion_lr.png             a 64x64 low-resolution test picture
Run with Debian's torch: /usr/bin/python3 scripts/train_spatial_moe.py
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

import spatial_moe_models as sm
from moe_models import load_fashion_mnist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "models", "spatial_moe")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "spatial")


def mosaics(images: np.ndarray, grid: int, count: int, rng: np.random.Generator) -> torch.Tensor:
    """[count, 1, 32 grid, 32 grid] high-resolution mosaics in [0, 1]."""
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2))).astype(np.float32) / 255.0
    pick = rng.integers(0, len(padded), size=(count, grid, grid))
    tiles = padded[pick]  # [count, grid, grid, 32, 32]
    return torch.from_numpy(tiles.transpose(0, 1, 3, 2, 4).reshape(count, 1, 32 * grid, 32 * grid).copy())


def downscale(hr: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(hr, sm.SCALE)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = F.mse_loss(a.clamp(0, 1), b.clamp(0, 1)).item()
    return 10 * np.log10(1.0 / mse)


def train_forward(model: sm.UpsamplerBase, lr: torch.Tensor):
    logits = model.router(lr)
    p = torch.softmax(logits, dim=1)
    hard = F.one_hot(logits.argmax(1), sm.EXPERTS).permute(0, 3, 1, 2).to(p.dtype)
    w = hard + p - p.detach()  # straight-through: top-1 forward, softmax gradient
    mask = F.interpolate(w, scale_factor=float(sm.BLOCK * sm.SCALE), mode="nearest")
    out = sum(mask[:, e:e + 1] * model.experts[e](lr) for e in range(sm.EXPERTS))
    # Balance: SPEC.md's importance loss on the soft scores, plus the Switch Transformer load loss on the hard
    # top-1 choices (the importance loss alone lets the argmax collapse onto a few experts).
    importance = p.sum(dim=(0, 2, 3))
    share = hard.mean(dim=(0, 2, 3))
    load = sm.EXPERTS * (share * p.mean(dim=(0, 2, 3))).sum()
    return out, 0.01 * (importance.std() / importance.mean()) ** 2 + 0.02 * load


def export(model, path, example, opset=13):
    torch.onnx.export(model, example, path, input_names=["image"], output_names=["upscaled"], opset_version=opset,
                      dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                    "upscaled": {0: "batch", 2: "out_height", 3: "out_width"}},
                      custom_opsets={"ai.switchyard": 1})


class ExpertOnPatch(torch.nn.Module):
    """The per-block workaround's expert: one block with its 3-pixel halo in, its 32x32 output out."""

    def __init__(self, expert):
        super().__init__()
        self.expert = expert

    def forward(self, patch):
        h = sm.BlockBatchUpsampler.HALO * sm.SCALE
        return self.expert(patch)[:, :, h:h + sm.BLOCK * sm.SCALE, h:h + sm.BLOCK * sm.SCALE]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    train_images, _ = load_fashion_mnist("train")
    test_images, _ = load_fashion_mnist("test")

    model = sm.DenseUpsampler(k=1)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.steps)
    start = time.time()
    for step in range(args.steps):
        hr = mosaics(train_images, 2, 32, rng)
        out, balance = train_forward(model, downscale(hr))
        loss = F.l1_loss(out, hr) + balance
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0:
            print(f"step {step}: loss {loss.item():.4f} ({time.time() - start:.0f} s)", flush=True)

    model.eval()
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(os.path.join(OUT, "per_block"), exist_ok=True)
    os.makedirs(FIXTURES, exist_ok=True)
    os.makedirs(os.path.join(ROOT, "examples", "images"), exist_ok=True)
    test_hr = mosaics(test_images, 2, 500, np.random.default_rng(1))
    test_lr = downscale(test_hr)
    report = {"train_steps": args.steps, "train_seconds": round(time.time() - start),
              "test_images": "500 mosaics 64x64 of Fashion-MNIST t10k, input = 4x4 average (16x16)"}
    with torch.no_grad():
        report["psnr_bicubic_db"] = round(psnr(F.interpolate(test_lr, scale_factor=4.0, mode="bicubic"), test_hr), 2)
        report["psnr_nearest_db"] = round(psnr(F.interpolate(test_lr, scale_factor=4.0, mode="nearest"), test_hr), 2)
        state = model.state_dict()
        forms = {}
        for k in (1, 2):
            for form, cls in sm.FORMS.items():
                m = cls(k=k)
                m.load_state_dict(state)
                m.eval()
                forms[(form, k)] = m
            report[f"psnr_top{k}_db"] = round(psnr(forms[("dense", k)](test_lr), test_hr), 2)
            counts = np.bincount(forms[("dense", k)].router(test_lr).argmax(1).flatten().numpy(), minlength=sm.EXPERTS)
            if k == 1:
                report["expert_share_top1"] = [round(float(c) / counts.sum(), 3) for c in counts]
    print(json.dumps(report, indent=1))
    with open(os.path.join(OUT, "upsampler_x4.json"), "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")

    big_hr = mosaics(test_images, 8, 1, np.random.default_rng(2))  # 256x256 -> 64x64 input
    example = downscale(big_hr)
    for (form, k), m in forms.items():
        suffix = "" if k == 1 else "_top2"
        export(m, os.path.join(OUT, f"upsampler_x4_{form}{suffix}.onnx"), example)
    export(forms[("dense", 1)].router, os.path.join(OUT, "per_block", "router.onnx"), example)
    patch = torch.zeros(1, 1, sm.BLOCK + 2 * sm.BlockBatchUpsampler.HALO, sm.BLOCK + 2 * sm.BlockBatchUpsampler.HALO)
    for e, expert in enumerate(model.experts):
        torch.onnx.export(ExpertOnPatch(expert), patch, os.path.join(OUT, "per_block", f"expert_{e}.onnx"),
                          input_names=["patch"], output_names=["block"], opset_version=13)

    # Test inputs of other sizes than the export example (and a batch of 2).
    with torch.no_grad():
        for name, (n, grid_h, grid_w) in {"24x40": (2, 3, 5), "48x32": (1, 6, 4)}.items():
            hr = torch.cat([mosaics(test_images, max(grid_h, grid_w), 1, np.random.default_rng(3 + i))
                            [:, :, :32 * grid_h, :32 * grid_w] for i in range(n)])
            lr = downscale(hr)
            for k in (1, 2):
                y = forms[("dense", k)](lr)
                for form in ("blocks", "native"):
                    other = forms[(form, k)](lr)
                    assert torch.allclose(y, other, atol=1e-5), (form, k, (y - other).abs().max())
                np.savez(os.path.join(FIXTURES, f"upsampler_{name}_top{k}.npz"), image=lr.numpy(), upscaled=y.numpy(),
                         block_experts=forms[("dense", k)].router(lr).argmax(1).numpy())

    from PIL import Image
    img = (example[0, 0].numpy() * 255.0 + 0.5).clip(0, 255).astype(np.uint8)
    Image.fromarray(img, mode="L").save(os.path.join(ROOT, "examples", "images", "fashion_lr.png"))


if __name__ == "__main__":
    main()
