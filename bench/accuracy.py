#!/usr/bin/env python3
"""Accuracy of every execution precision against FP32: writes docs/accuracy.md (and JSON).

    python3 bench/accuracy.py [--out docs/accuracy.md] [--json bench/results/accuracy.json] [--quick]

- Seed classifier: top-1 on the 10,000 Fashion-MNIST test images (`switchyard eval --precision P`), against
  Switchyard FP32 and PyTorch (models/seed_classifier.json).
- MoE FFN layers (ONNX Runtime's com.microsoft.MoE models of `make compare`): 256 random tokens through
  `switchyard run --precision P`; against FP32: max relative error (max |y - y32| / max |y32|), mean
  relative error (mean |y - y32| / mean |y32|), cosine similarity over all outputs and the lowest per-token
  cosine; routing agreement = share of tokens whose top-k expert set is unchanged, from the router logits
  each precision computed (an extra graph output).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
from ms_moe_models import build as build_ms_moe  # noqa: E402
sys.path.insert(0, os.path.join(ROOT, "tools"))
from quantize import moe_to_qmoe  # noqa: E402

SWITCHYARD = os.path.join(ROOT, "build", "switchyard")
# (label, switchyard options)
PRECISIONS = [("fp32", ["--precision", "fp32"]), ("fp16", ["--precision", "fp16"]), ("bf16", ["--precision", "bf16"]),
              ("int8", ["--precision", "int8"]),
              ("int4", ["--precision", "int4"]),
              ("int8-weights", ["--precision", "int8-weights"]), ("int4-weights", ["--precision", "int4-weights"]),
              ("int4-weights, group 16", ["--precision", "int4-weights", "--weight-group", "16"])]
LAYERS = [("E8 k2 H1024 I2816 ReLU", dict(E=8, k=2, H=1024, I=2816, activation="relu")),
          ("E8 k2 H1024 I2816 SwiGLU", dict(E=8, k=2, H=1024, I=2816, activation="swiglu")),
          ("E64 k8 H2048 I1024 SwiGLU", dict(E=64, k=8, H=2048, I=1024, activation="swiglu"))]


def cli(*args):
    return subprocess.run([SWITCHYARD, *map(str, args)], check=True, capture_output=True, text=True).stdout


def seed_rows():
    with open(os.path.join(ROOT, "models", "seed_classifier.json")) as f:
        torch_acc = json.load(f)["torch_accuracy"]
    rows = []
    for p, options in PRECISIONS:
        out = cli("eval", os.path.join(ROOT, "models", "seed_classifier.onnx"), *options)
        rows.append({"precision": p, "top1": float(re.search(r"accuracy:\s+([0-9.]+)", out).group(1)), "torch_top1": torch_acc})
        print(f"seed classifier {p}: {rows[-1]['top1']:.4f}", flush=True)
    # Static INT8 (switchyard quantize: QDQ ONNX, 256 calibration images) run by Switchyard.
    with tempfile.TemporaryDirectory() as work:
        qdq = os.path.join(work, "seed_int8_qdq.onnx")
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "quantize.py"), os.path.join(ROOT, "models", "seed_classifier.onnx"),
                        "-o", qdq, "--samples", "256"], check=True, capture_output=True)
        out = cli("eval", qdq)
        rows.append({"precision": "static int8 QDQ (switchyard quantize)",
                     "top1": float(re.search(r"accuracy:\s+([0-9.]+)", out).group(1)), "torch_top1": torch_acc})
        print(f"seed classifier static int8: {rows[-1]['top1']:.4f}", flush=True)
        compressed = os.path.join(work, "seed_int8_weights.onnx")
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "quantize.py"), os.path.join(ROOT, "models", "seed_classifier.onnx"),
                        "-o", compressed, "--weights-only"], check=True, capture_output=True)
        out = cli("eval", compressed)
        rows.append({"precision": "int8 weights-only file (switchyard quantize --weights-only)",
                     "top1": float(re.search(r"accuracy:\s+([0-9.]+)", out).group(1)), "torch_top1": torch_acc})
        print(f"seed classifier int8 weights-only: {rows[-1]['top1']:.4f}", flush=True)
    for r in rows:
        r["vs_fp32_points"] = 100 * (r["top1"] - rows[0]["top1"])
        r["vs_torch_points"] = 100 * (r["top1"] - torch_acc)
    return rows


def layer_rows(workdir, name, spec, tokens):
    model = build_ms_moe(normalize=1, biases=False, fusion=1 if spec["activation"] == "swiglu" else 0, seed=spec["E"], **spec)
    model.graph.output.append(onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["tokens", spec["E"]]))
    # ONNX Runtime's quantized MoE format (com.microsoft.QMoE from `switchyard quantize --weights-only`):
    # INT8 per row, INT4 per block of 32, run by ONNX Runtime and by Switchyard. (Written before the
    # FP32 model is saved with external data, which detaches the in-memory weights.)
    qmoe = {}
    for bits, block in ((8, 0), (4, 32)):
        quantized = onnx.ModelProto()
        quantized.CopyFrom(model)
        label = f"int{bits} QMoE file{f', block {block}' if block else ''}"
        qmoe[label] = os.path.join(workdir, f"layer_int{bits}_qmoe.onnx")
        onnx.save(moe_to_qmoe(quantized, bits, block), qmoe[label])
    path = os.path.join(workdir, "layer.onnx")
    onnx.save(model, path, save_as_external_data=True, location="layer.weights")
    x = np.random.default_rng(7).normal(0, 1, (tokens, spec["H"])).astype(np.float32)
    np.savez(os.path.join(workdir, "in.npz"), x=x)
    outs = {}
    for p, options in PRECISIONS:
        cli("run", path, "--inputs", os.path.join(workdir, "in.npz"), "--outputs", os.path.join(workdir, "out.npz"), *options)
        got = np.load(os.path.join(workdir, "out.npz"))
        outs[p] = (got["y"].astype(np.float64), got["logits"])
    import onnxruntime as ort
    for label, qpath in qmoe.items():
        y, logits = ort.InferenceSession(qpath, providers=["CPUExecutionProvider"]).run(["y", "logits"], {"x": x})
        outs[f"{label}, ONNX Runtime"] = (y.astype(np.float64), logits)
        cli("run", qpath, "--inputs", os.path.join(workdir, "in.npz"), "--outputs", os.path.join(workdir, "out.npz"))
        got = np.load(os.path.join(workdir, "out.npz"))
        outs[f"{label}, Switchyard"] = (got["y"].astype(np.float64), got["logits"])
        os.remove(qpath)
    os.remove(os.path.join(workdir, "layer.weights"))
    y32, l32 = outs["fp32"]
    top = lambda logits: np.sort(np.argsort(-logits, axis=1, kind="stable")[:, :spec["k"]], axis=1)  # noqa: E731
    rows = []
    for p, (y, logits) in outs.items():
        d = y - y32
        per_token = np.sum(y * y32, 1) / np.sqrt(np.sum(y * y, 1) * np.sum(y32 * y32, 1))
        rows.append({"layer": name, "precision": p, "tokens": tokens,
                     "max_rel_error": float(np.abs(d).max() / np.abs(y32).max()),
                     "mean_rel_error": float(np.abs(d).mean() / np.abs(y32).mean()),
                     "cosine": float(np.sum(y * y32) / np.sqrt(np.sum(y * y) * np.sum(y32 * y32))),
                     "min_token_cosine": float(per_token.min()),
                     "routing_agreement": float(np.mean(np.all(top(logits) == top(l32), axis=1)))})
        print(f"{name} {p}: cosine {rows[-1]['cosine']:.5f}, max rel {rows[-1]['max_rel_error']:.4f}", flush=True)
    return rows


def write_markdown(path, seed, layers, command):
    lines = ["# Accuracy per execution precision", "",
             f"Generated by `{command}` (bench/accuracy.py); do not edit by hand. Precisions are those of",
             "`CompileOptions::precision` / `--precision`: they change how the **routed experts' weights** are stored and",
             "multiplied (fp16: FP16 weights, FP32 arithmetic; bf16: BF16 weights and expert inputs, FP32 sums; int8: INT8 weights, symmetric per column,",
             "and expert inputs quantized per row at run time, INT32 sums; int4: the INT4 weights of int4-weights with",
             "int8's quantized inputs and integer sums; int8-weights / int4-weights: weight-only",
             "INT8 / INT4 with FP16 scales per 32 rows (`--weight-group`) and column, INT4 asymmetric); routers, dense layers and shared",
             "experts stay FP32, so routing is unchanged by construction (measured below from the logits). Quantized",
             "files carry their own precision: the QDQ and weights-only files of `switchyard quantize`, and ONNX Runtime's",
             "com.microsoft.QMoE (`switchyard quantize --weights-only [--bits 4 --block-size 32]`), run by both engines.", "",
             "## Seed classifier, Fashion-MNIST test set (10,000 images)", "",
             "| precision | top-1 | vs Switchyard FP32 | vs PyTorch |", "| --- | ---: | ---: | ---: |"]
    for r in seed:
        lines.append(f"| {r['precision']} | {100 * r['top1']:.2f}% | {r['vs_fp32_points']:+.2f} points | {r['vs_torch_points']:+.2f} points |")
    lines += ["", f"PyTorch (FP32): {100 * seed[0]['torch_top1']:.2f}%.", "",
              "## MoE FFN layers (ONNX Runtime com.microsoft.MoE models, 256 random tokens), against Switchyard FP32", "",
              "| layer | precision | max rel. error | mean rel. error | cosine | lowest token cosine | routing agreement |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in layers:
        lines.append(f"| {r['layer']} | {r['precision']} | {r['max_rel_error']:.2e} | {r['mean_rel_error']:.2e} | "
                     f"{r['cosine']:.6f} | {r['min_token_cosine']:.6f} | {100 * r['routing_agreement']:.1f}% |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "accuracy.md"))
    parser.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "accuracy.json"))
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="the E=8 ReLU layer only")
    args = parser.parse_args()
    seed = seed_rows()
    layers = []
    with tempfile.TemporaryDirectory() as workdir:
        for name, spec in LAYERS[:1] if args.quick else LAYERS:
            layers += layer_rows(workdir, name, spec, args.tokens)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"seed_classifier": seed, "moe_layers": layers}, f, indent=1)
    write_markdown(args.out, seed, layers, "make accuracy")
    print(f"wrote {args.out} and {args.json}")


if __name__ == "__main__":
    main()
