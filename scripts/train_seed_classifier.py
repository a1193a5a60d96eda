#!/usr/bin/python3
"""Trains the seed classifier (SPEC.md) on Fashion-MNIST and exports it as users do:
torch.jit.script + torch.onnx.export with a dynamic batch axis.

Training uses noisy top-k gating and the importance loss; both are off for evaluation and export.
Writes models/seed_classifier.onnx and models/seed_classifier.json (PyTorch's test accuracy).
Run with Debian's torch: /usr/bin/python3 scripts/train_seed_classifier.py
"""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

from moe_models import SeedClassifier, importance_loss, load_fashion_mnist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def to_input(images: np.ndarray) -> torch.Tensor:
    # The only preprocessing: bytes -> [0, 1], NCHW. Recorded in the model's metadata for `eval`.
    return torch.from_numpy(images.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--out", default=os.path.join(ROOT, "models", "seed_classifier.onnx"))
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(2)
    train_x, train_y = load_fashion_mnist("train")
    test_x, test_y = load_fashion_mnist("test")
    xs, ys = to_input(train_x), torch.from_numpy(train_y.astype(np.int64))

    model = SeedClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    for epoch in range(args.epochs):
        model.train()
        model.moe.noisy = True
        perm = torch.randperm(len(xs))
        total = 0.0
        for start in range(0, len(xs), 128):
            batch = perm[start:start + 128]
            logits, p = model.forward_with_probs(xs[batch])
            loss = F.cross_entropy(logits, ys[batch]) + importance_loss(p)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        sched.step()
        print(f"epoch {epoch + 1}: loss {total / len(xs):.4f}", flush=True)

    model.eval()
    model.moe.noisy = False
    with torch.no_grad():
        logits = model(to_input(test_x))
    correct = int((logits.argmax(1).numpy() == test_y).sum())
    print(f"PyTorch test accuracy: {correct}/{len(test_y)} = {correct / len(test_y):.4f}")

    scripted = torch.jit.script(model)
    torch.onnx.export(scripted, (to_input(test_x[:2]),), args.out, opset_version=17,
                      input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    import onnx  # noqa: E402  (only for metadata; the export itself needs no onnx package)
    m = onnx.load(args.out)
    for key, value in {"switchyard.preprocess": "scale=0.00392156862745098",
                       "switchyard.dataset": "fashion-mnist"}.items():
        prop = m.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(m, args.out)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump({"dataset": "fashion-mnist", "test_images": len(test_y), "torch_correct": correct,
                   "torch_accuracy": correct / len(test_y), "torch_version": torch.__version__,
                   "export": "torch.jit.script + torch.onnx.export opset 17", "epochs": args.epochs},
                  f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
