#!/usr/bin/env python3
"""Writes the bad-input catalogue: tests/catalogue/*.onnx|npz|npy and manifest.json.

Each entry names a model, optionally an input file, and what must happen: an error whose message
contains `expect`, or "ok" (hostile but valid input that must run). The catalogue is exercised through
the CLI, the C++ API and the Python API (tests/python/test_catalogue.py, tests/cpp/catalogue_test.cpp).
Needs only the PyPI onnx and numpy packages: python3 scripts/make_catalogue.py
"""
import json
import os
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "catalogue")
SEED = os.path.join(ROOT, "models", "seed_classifier.onnx")
entries = []


def add(name, expect, model=None, inputs=None, cli_only=False):
    entries.append({"name": name, "model": model or "seed_classifier.onnx", "inputs": inputs, "expect": expect,
                    "cli_only": cli_only})


def save_model(name, model):
    onnx.save(model, os.path.join(OUT, name))
    return name


def write_bytes(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    return name


def graph_model(nodes, inputs, outputs, inits=(), opset=17, domains=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains])


def f32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def good_inputs(name, batch=2):
    np.savez(os.path.join(OUT, name), image=np.random.default_rng(0).random((batch, 1, 28, 28), dtype=np.float32))
    return name


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    shutil.copy(SEED, os.path.join(OUT, "seed_classifier.onnx"))
    seed_bytes = open(SEED, "rb").read()
    ok_in = good_inputs("good.npz")
    x2_in = "x2.npz"  # a float32 [2] input named x, for the small graphs that fail at run time
    np.savez(os.path.join(OUT, x2_in), x=np.zeros(2, np.float32))

    # Malformed files.
    add("truncated model", "not a valid ONNX model", write_bytes("truncated.onnx", seed_bytes[:5000]), ok_in)
    add("garbage model", "not a valid ONNX model", write_bytes("garbage.onnx", bytes(range(256)) * 40), ok_in)
    add("empty file", "has no graph", write_bytes("empty.onnx", b""), ok_in)
    add("model without graph", "has no graph", save_model("no_graph.onnx", onnx.ModelProto(ir_version=8)), ok_in)
    m = graph_model([helper.make_node("Relu", ["x"], ["y"])], [f32("x", [2])], [f32("y", [2])])
    m.ir_version = 99
    add("IR version 99", "unsupported IR version 99", save_model("ir99.onnx", m), ok_in)
    add("opset 99", "default-domain opset 99 is not supported",
        save_model("opset99.onnx", graph_model([helper.make_node("Relu", ["x"], ["y"])], [f32("x", [2])], [f32("y", [2])], opset=99)), ok_in)
    add("domain not imported", "is not imported by the model",
        save_model("domain.onnx", graph_model([helper.make_node("Foo", ["x"], ["y"], domain="com.nowhere")], [f32("x", [2])], [f32("y", [2])])), ok_in)
    add("unsupported operator", "ai.onnx::Hardmax (opset 17)",
        save_model("unsupported_op.onnx", graph_model([helper.make_node("Hardmax", ["x"], ["y"])], [f32("x", [2, 3])], [f32("y", [2, 3])])), ok_in)
    # Broken graphs.
    add("cyclic graph", "has a cycle", save_model("cycle.onnx", graph_model(
        [helper.make_node("Relu", ["b"], ["a"]), helper.make_node("Relu", ["a"], ["b"])], [f32("x", [2])], [f32("b", [2])])), ok_in)
    add("dangling edge", "input 'nowhere' is not produced", save_model("dangling.onnx", graph_model(
        [helper.make_node("Relu", ["nowhere"], ["y"])], [f32("x", [2])], [f32("y", [2])])), ok_in)
    add("value produced twice", "is produced twice", save_model("produced_twice.onnx", graph_model(
        [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Neg", ["x"], ["y"])], [f32("x", [2])], [f32("y", [2])])), ok_in)
    # Initializers that lie about their size.
    huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 40, 1 << 40])
    add("huge declared dims", "too many elements", save_model("huge_dims.onnx", graph_model(
        [helper.make_node("Add", ["x", "w"], ["y"])], [f32("x", [2])], [f32("y", [2])], [huge])), ok_in)
    # A Reshape target whose product overflows int64 (found by fuzz_model: UBSan, signed overflow).
    target = helper.make_tensor("s", TensorProto.INT64, [3], [(1 << 56) - 1, 8573157376, -1])
    add("reshape target overflowing int64", "too many elements", save_model("reshape_overflow.onnx", graph_model(
        [helper.make_node("Reshape", ["x", "s"], ["y"])], [f32("x", [2])], [f32("y", [2])], [target])), x2_in)
    big = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[100000, 100000])
    add("declared dims without data", "holds 0 values", save_model("dims_no_data.onnx", graph_model(
        [helper.make_node("Add", ["x", "w"], ["y"])], [f32("x", [2])], [f32("y", [2])], [big])), ok_in)
    neg = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[-3, 2])
    add("negative dim", "negative dimension", save_model("negative_dim.onnx", graph_model(
        [helper.make_node("Add", ["x", "w"], ["y"])], [f32("x", [2])], [f32("y", [2])], [neg])), ok_in)
    raw = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 4], raw_data=b"\0" * 10)
    add("raw_data size mismatch", "raw_data has 10 bytes", save_model("raw_mismatch.onnx", graph_model(
        [helper.make_node("Add", ["x", "w"], ["y"])], [f32("x", [4])], [f32("y", [4, 4])], [raw])), ok_in)
    typed = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3], float_data=[1.0, 2.0])
    add("typed data size mismatch", "holds 2 values", save_model("typed_mismatch.onnx", graph_model(
        [helper.make_node("Add", ["x", "w"], ["y"])], [f32("x", [3])], [f32("y", [3])], [typed])), ok_in)
    strings = helper.make_tensor("w", TensorProto.STRING, [1], [b"a"])
    add("string initializer", "unsupported tensor element type 8", save_model("string_init.onnx", graph_model(
        [helper.make_node("Identity", ["w"], ["y"])], [f32("x", [1])], [f32("y", [1])], [strings])), ok_in)
    # External data that tries to leave the model folder, or is missing.
    for name, location, expect in (("dotdot", "../secret.bin", "contains '..'"), ("absolute", "/etc/passwd", "is absolute"),
                                   ("missing", "nothere.bin", "cannot open external data file")):
        t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2], data_location=TensorProto.EXTERNAL)
        for k, v in {"location": location, "offset": "0", "length": "8"}.items():
            e = t.external_data.add()
            e.key, e.value = k, v
        add(f"external data {name}", expect, save_model(f"external_{name}.onnx", graph_model(
            [helper.make_node("Add", ["x", "w"], ["y"])], [f32("x", [2])], [f32("y", [2])], [t])), ok_in)
    write_bytes("short.bin", b"\0" * 4)
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2], data_location=TensorProto.EXTERNAL)
    for k, v in {"location": "short.bin", "offset": "0", "length": "8"}.items():
        e = t.external_data.add()
        e.key, e.value = k, v
    add("external data past the file end", "outside file", save_model("external_short.onnx", graph_model(
        [helper.make_node("Add", ["x", "w"], ["y"])], [f32("x", [2])], [f32("y", [2])], [t])), ok_in)
    # Offsets are strings in the proto: not a number (found by fuzz_model), and one that overflows offset+length.
    for name, offset, expect in (("offset_text", "A", "offset 'A' is not an integer"),
                                 ("offset_huge", "9223372036854775800", "outside file")):
        t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2], data_location=TensorProto.EXTERNAL)
        for k, v in {"location": "short.bin", "offset": offset, "length": "8"}.items():
            e = t.external_data.add()
            e.key, e.value = k, v
        add(f"external data {name}", expect, save_model(f"external_{name}.onnx", graph_model(
            [helper.make_node("Add", ["x", "w"], ["y"])], [f32("x", [2])], [f32("y", [2])], [t])), ok_in)
    # A node with fewer inputs than its operator takes (found by fuzz_model: the MoE pass read past them).
    add("node with too few inputs", "has 1 inputs, Mul takes 2..2", save_model("arity.onnx", graph_model(
        [helper.make_node("Mul", ["x"], ["y"])], [f32("x", [2])], [f32("y", [2])])), ok_in)
    # Types and attributes.
    seq_in = helper.make_tensor_sequence_value_info("x", TensorProto.FLOAT, [2])
    add("sequence input", "has sequence type", save_model("sequence_input.onnx", graph_model(
        [helper.make_node("Identity", ["x"], ["y"])], [seq_in], [f32("y", [2])])), ok_in)
    gemm = helper.make_node("Gemm", ["x", "w"], ["y"])
    gemm.attribute.append(helper.make_attribute("transB", 1.5))
    add("attribute of the wrong type", "attribute 'transB' must be an int", save_model("attr_type.onnx", graph_model(
        [gemm], [f32("x", [2, 2])], [f32("y", [2, 2])], [numpy_helper.from_array(np.eye(2, dtype=np.float32), "w")])), ok_in)
    leaf = helper.make_graph([helper.make_node("Identity", ["c"], ["o"])], "leaf", [], [f32("o", [1])])
    inner = leaf
    for depth in range(20):  # only the then-branch nests, so the file stays small
        node = helper.make_node("If", ["cond"], [f"o{depth}"], then_branch=inner, else_branch=leaf)
        inner = helper.make_graph([node], f"g{depth}", [], [f32(f"o{depth}", [1])])
    deep = helper.make_graph([helper.make_node("If", ["cond"], ["y"], then_branch=inner, else_branch=leaf)], "top",
                             [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])], [f32("y", [1])],
                             [numpy_helper.from_array(np.ones(1, np.float32), "c")])
    add("subgraphs nested 21 deep", "nested deeper than 16", save_model("deep_subgraphs.onnx",
        helper.make_model(deep, opset_imports=[helper.make_opsetid("", 17)])), ok_in)
    # MoE operators with inconsistent weights.
    rng = np.random.default_rng(0)
    w = lambda *s: numpy_helper.from_array(rng.normal(0, 1, s).astype(np.float32), f"w{len(s)}_{'x'.join(map(str, s))}")
    router, fc1, fc2_bad = w(4, 8), w(4, 16, 8), w(4, 7, 16)
    moe = helper.make_node("MoE", ["x", router.name, "", fc1.name, "", fc2_bad.name], ["y"], domain="ai.switchyard", k=2)
    add("MoE with mismatched expert shapes", "expert weight shapes disagree", save_model("moe_shapes.onnx", graph_model(
        [moe], [f32("x", ["t", 8])], [f32("y", ["t", 8])], [router, fc1, fc2_bad], domains=["ai.switchyard"])), ok_in)
    fc2 = w(4, 8, 16)
    moe = helper.make_node("MoE", ["x", "r", "", fc1.name, "", fc2.name], ["y"], domain="ai.switchyard", k=2)
    add("MoE weights computed at run time", "must be an initializer", save_model("moe_dynamic.onnx", graph_model(
        [moe], [f32("x", ["t", 8]), f32("r", [4, 8])], [f32("y", ["t", 8])], [fc1, fc2], domains=["ai.switchyard"])), ok_in)
    moe = helper.make_node("MoE", ["x", router.name, "", fc1.name, "", fc2.name], ["y"], domain="ai.switchyard", k=9)
    add("MoE k larger than the experts", "k must be in 1..num_experts", save_model("moe_k.onnx", graph_model(
        [moe], [f32("x", ["t", 8])], [f32("y", ["t", 8])], [router, fc1, fc2], domains=["ai.switchyard"])), ok_in)
    ms = helper.make_node("MoE", ["x", "logits", fc1.name, "", fc2_bad.name], ["y"], domain="com.microsoft", k=2)
    add("com.microsoft.MoE with mismatched fc2", "do not match fc1", save_model("ms_moe_shapes.onnx", graph_model(
        [helper.make_node("MatMul", ["x", "rw"], ["logits"]), ms], [f32("x", ["t", 8])], [f32("y", ["t", 8])],
        [numpy_helper.from_array(rng.normal(0, 1, (8, 4)).astype(np.float32), "rw"), fc1, fc2_bad], domains=["com.microsoft"])), ok_in)
    # Run-time failures inside kernels.
    add("gather index out of range", "out of range", save_model("gather_oob.onnx", graph_model(
        [helper.make_node("Gather", ["image", "idx"], ["y"])], [f32("image", ["b", 1, 28, 28])], [f32("y", None)],
        [numpy_helper.from_array(np.array([100], np.int64), "idx")])), ok_in)
    add("reshape to a wrong size", "cannot reshape", save_model("reshape_bad.onnx", graph_model(
        [helper.make_node("Reshape", ["image", "shape"], ["y"])], [f32("image", ["b", 1, 28, 28])], [f32("y", None)],
        [numpy_helper.from_array(np.array([3, 7], np.int64), "shape")])), ok_in)
    loop_body = helper.make_graph([helper.make_node("Identity", ["c_in"], ["c_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
                                  "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                                           helper.make_tensor_value_info("c_in", TensorProto.BOOL, []), f32("v_in", None)],
                                  [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []), f32("v_out", None)])
    add("loop of 10^12 iterations", "iterations", save_model("endless_loop.onnx", graph_model(
        [helper.make_node("Loop", ["M", "cond", "image"], ["y"], body=loop_body)],
        [f32("image", ["b", 1, 28, 28])], [f32("y", None)],
        [numpy_helper.from_array(np.array(10 ** 12, np.int64), "M"), numpy_helper.from_array(np.array(True), "cond")])), ok_in)
    # Bad inputs for the seed classifier.
    np.savez(os.path.join(OUT, "float64.npz"), image=np.zeros((2, 1, 28, 28)))
    add("input of the wrong dtype", "expected dtype float32, got float64", inputs="float64.npz")
    np.savez(os.path.join(OUT, "rank2.npz"), image=np.zeros((2, 784), np.float32))
    add("input of the wrong rank", "expected rank 4", inputs="rank2.npz")
    np.savez(os.path.join(OUT, "wrong_dim.npz"), image=np.zeros((2, 1, 28, 27), np.float32))
    add("input with a wrong fixed dim", "dimension 3 must be 28", inputs="wrong_dim.npz")
    np.savez(os.path.join(OUT, "unknown_input.npz"), picture=np.zeros((2, 1, 28, 28), np.float32))
    add("unknown input name", "unknown input 'picture'", inputs="unknown_input.npz")
    np.savez(os.path.join(OUT, "no_inputs.npz"))
    add("missing input", "input 'image' was not set", inputs="no_inputs.npz")
    x = np.random.default_rng(1).random((4, 1, 28, 28), dtype=np.float32)
    x[0, 0, 0, 0], x[1, 0, 3, 3], x[2, 0, 5, 5] = np.nan, np.inf, -np.inf
    np.savez(os.path.join(OUT, "nan_inf.npz"), image=x)
    add("NaN and Inf pixels", "ok", inputs="nan_inf.npz")
    np.savez(os.path.join(OUT, "empty_batch.npz"), image=np.zeros((0, 1, 28, 28), np.float32))
    add("empty batch", "ok", inputs="empty_batch.npz")
    # Broken input files (the CLI reads them; Python users hand NumPy arrays over).
    write_bytes("not_a_zip.npz", b"PK\x03\x04 not really a zip")
    add("npz that is not a zip", "not a readable .npz archive", inputs="not_a_zip.npz", cli_only=True)
    good = open(os.path.join(OUT, "good.npz"), "rb").read()
    write_bytes("truncated.npz", good[: len(good) // 2])
    add("truncated npz", "npz", inputs="truncated.npz", cli_only=True)
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }"
    header += b" " * (117 - len(header)) + b"\n"
    write_bytes("huge_shape.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header)
    add("npy with a huge declared shape", "too many elements", inputs="huge_shape.npy", cli_only=True)
    np.save(os.path.join(OUT, "image.npy"), np.zeros((2, 1, 28, 28), np.float32))
    write_bytes("truncated.npy", open(os.path.join(OUT, "image.npy"), "rb").read()[:-100])
    add("truncated npy", "data bytes", inputs="truncated.npy", cli_only=True)
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump({"entries": entries}, f, indent=1)
        f.write("\n")
    print(f"{len(entries)} catalogue entries in {OUT}")


if __name__ == "__main__":
    main()
