"""FP32 dense layers run on Switchyard's panels or on oneDNN, chosen per shape at compile time (or forced
with SWITCHYARD_DENSE_GEMM): every choice, on both sides of the row threshold, gives the same result."""
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

switchyard = pytest.importorskip("switchyard")


def dense_model(path):
    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 0.05, (300, 256)).astype(np.float32)  # MatMul B [K, N]
    w2 = rng.normal(0, 0.05, (96, 256)).astype(np.float32)  # Gemm B [N, K] (transB, as nn.Linear exports)
    bias = rng.normal(0, 1, (96,)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]),
             helper.make_node("Gemm", ["h", "w2", "b"], ["y"], transB=1, alpha=0.5, beta=2.0)]
    graph = helper.make_graph(nodes, "dense", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 300])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 96])],
                              [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"),
                               numpy_helper.from_array(bias, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return lambda x: 0.5 * (x @ w1) @ w2.T + 2.0 * bias


@pytest.mark.parametrize("mode", ["panels", "library", "panels-few-rows", None])
def test_every_dense_gemm_choice_matches_numpy(tmp_path, monkeypatch, mode):
    if mode is None:
        monkeypatch.delenv("SWITCHYARD_DENSE_GEMM", raising=False)
    else:
        monkeypatch.setenv("SWITCHYARD_DENSE_GEMM", mode)
    reference = dense_model(str(tmp_path / "dense.onnx"))
    session = switchyard.InferenceSession(str(tmp_path / "dense.onnx"), threads=2)
    rng = np.random.default_rng(1)
    for rows in (1, 5, 16, 63, 64, 200):  # the threshold between few and many rows is 64
        x = rng.normal(0, 1, (rows, 300)).astype(np.float32)
        (y,) = session.run(None, {"x": x})
        np.testing.assert_allclose(y, reference(x), rtol=1e-4, atol=1e-4)
    notes = " ".join(session.compile_notes)
    if mode in ("panels", "panels-few-rows"):
        assert "dense FP32 GEMM measured at compile time" in notes
    if mode == "library":
        assert "dense GEMM" not in notes
