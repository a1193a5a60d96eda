"""QDQ models (static INT8 from `switchyard quantize`, ONNX Runtime or NNCF): the activation Q/DQ pairs are
dropped (a pair whose range starts at 0 stays a Relu), the MoE routing behind them is fused, and MoE
layers with INT8 expert weights run at precision int8 with the model's codes (static QDQ, and weights-only
compression from `switchyard quantize --weights-only`)."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import FIXTURES

switchyard = pytest.importorskip("switchyard")
ort = pytest.importorskip("onnxruntime")


def qdq_mlp(path, zero_point):
    """x -> MatMul W1 -> QuantizeLinear/DequantizeLinear (int8, given zero point) -> MatMul W2."""
    rng = np.random.default_rng(0)
    w1, w2 = rng.standard_normal((8, 16)).astype(np.float32), rng.standard_normal((16, 4)).astype(np.float32)
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"),
             numpy_helper.from_array(np.array(0.05, np.float32), "s"), numpy_helper.from_array(np.array(zero_point, np.int8), "z")]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
             helper.make_node("QuantizeLinear", ["h", "s", "z"], ["hq"], name="q"),
             helper.make_node("DequantizeLinear", ["hq", "s", "z"], ["hd"], name="dq"),
             helper.make_node("MatMul", ["hd", "w2"], ["y"], name="fc2")]
    graph = helper.make_graph(nodes, "qdq_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return w1, w2


@pytest.mark.parametrize("zero_point, relu", [(-128, True), (0, False)])
def test_activation_pairs_dropped_and_clamp_at_zero_kept_as_relu(tmp_path, zero_point, relu):
    path = str(tmp_path / "m.onnx")
    w1, w2 = qdq_mlp(path, zero_point)
    x = np.random.default_rng(1).standard_normal((5, 8)).astype(np.float32) * 0.3
    h = x @ w1
    expected = (np.maximum(h, 0) if relu else h) @ w2
    session = switchyard.InferenceSession(path)
    assert any("removed 1 activation" in n and f"({int(relu)} clamping at 0 kept as Relu)" in n for n in session.compile_notes)
    np.testing.assert_allclose(session.run(None, {"x": x})[0], expected, rtol=1e-5, atol=1e-5)
    # Unfused, the graph runs as written (rounded through INT8), like ONNX Runtime.
    exact = switchyard.InferenceSession(path, fuse_moe=False).run(None, {"x": x})[0]
    reference = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(exact, reference, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def quantized_mixtral(tmp_path_factory, switchyard_bin):
    import os
    import subprocess
    import sys
    out = tmp_path_factory.mktemp("q") / "mixtral_int8.onnx"
    proc = subprocess.run([switchyard_bin, "quantize", str(FIXTURES / "mixtral_block_script.onnx"), "-o", str(out), "--calibration",
                           str(FIXTURES / "mixtral_block_script.inputs.npz")], capture_output=True, text=True,
                          env={**os.environ, "SWITCHYARD_PYTHON": sys.executable}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out


def test_qdq_moe_is_fused_and_runs_int8(quantized_mixtral):
    feeds = dict(np.load(FIXTURES / "mixtral_block_script.inputs.npz"))
    expected = np.load(FIXTURES / "mixtral_block_script.expected.npz")
    session = switchyard.InferenceSession(str(quantized_mixtral))
    notes = " | ".join(session.compile_notes)
    assert "fused MoE layer" in notes and "expert weights are INT8; runs at precision int8" in notes
    ours = session.run(None, feeds)[0]
    fp32 = expected[list(expected.keys())[0]]
    cosine = float(np.sum(ours * fp32) / np.linalg.norm(ours) / np.linalg.norm(fp32))
    assert cosine > 0.999, cosine
    # ONNX Runtime on the same QDQ model (activations rounded per tensor) lands as close to FP32.
    theirs = ort.InferenceSession(str(quantized_mixtral), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    assert np.linalg.norm(ours - fp32) <= 2 * np.linalg.norm(theirs - fp32) + 1e-6
    # A per-node override still wins over the model's INT8.
    name = next(n.split("'")[1] for n in session.compile_notes if n.startswith("fused MoE layer"))
    exact = switchyard.InferenceSession(str(quantized_mixtral), precision_overrides={name: "fp32"}).run(None, feeds)[0]
    assert not np.array_equal(exact, ours)


def compress(switchyard_bin, model, out, check=True):
    import os
    import subprocess
    import sys
    proc = subprocess.run([switchyard_bin, "quantize", str(model), "-o", str(out), "--weights-only"], capture_output=True, text=True,
                          env={**os.environ, "SWITCHYARD_PYTHON": sys.executable}, timeout=600)
    assert (proc.returncode == 0) == check, proc.stderr
    return proc


@pytest.mark.parametrize("fixture", ["mixtral_block_script", "switchyard_moe_deepseek", "seed_e8_k2_script"])
def test_weights_only_compression(tmp_path, switchyard_bin, fixture):
    model, out = FIXTURES / f"{fixture}.onnx", tmp_path / "w8.onnx"
    assert "compressed" in compress(switchyard_bin, model, out).stderr
    compressed = onnx.load(out)
    onnx.checker.check_model(compressed)
    int8 = [t for t in compressed.graph.initializer if t.data_type == TensorProto.INT8]
    weight_bytes = lambda m: sum(numpy_helper.to_array(t).nbytes for t in m.graph.initializer)  # noqa: E731
    assert int8 and weight_bytes(compressed) < 0.35 * weight_bytes(onnx.load(model))
    feeds = dict(np.load(FIXTURES / f"{fixture}.inputs.npz"))
    expected = np.load(FIXTURES / f"{fixture}.expected.npz")
    fp32 = expected[list(expected.keys())[0]]
    session = switchyard.InferenceSession(str(out))
    notes = " | ".join(session.compile_notes)
    assert "expert weights are INT8" in notes
    ours = session.run(None, feeds)[0]
    assert np.linalg.norm(ours - fp32) <= 0.02 * np.linalg.norm(fp32)
    if fixture != "switchyard_moe_deepseek":  # ONNX Runtime runs standard-op compressed models
        theirs = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
        assert np.linalg.norm(ours - theirs) <= 0.02 * np.linalg.norm(theirs)  # + INT8 activations
        # Same codes, FP32 activations on both sides (override): only Switchyard's FP16 scales differ.
        names = [n.split("'")[1] for n in session.compile_notes if n.startswith("MoE '")]
        if names:
            exact = switchyard.InferenceSession(str(out), precision_overrides={names[0]: "int8-weights"})
            assert np.linalg.norm(exact.run(None, feeds)[0] - theirs) <= 1e-3 * np.linalg.norm(theirs)


def test_weights_only_needs_opset_13(tmp_path, switchyard_bin):
    path = tmp_path / "old.onnx"
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
                              [numpy_helper.from_array(np.ones((4, 2), np.float32), "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), path)
    proc = compress(switchyard_bin, path, tmp_path / "out.onnx", check=False)
    assert proc.returncode == 1 and "opset >= 13" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.onnx").exists() and list(tmp_path.iterdir()) == [path]


def test_malformed_qdq_pairs_give_one_line_errors(cli, tmp_path):
    """Omitted operands around Q/DQ pairs: the passes leave them alone and the kernels say what is wrong."""
    inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s"), numpy_helper.from_array(np.array(0, np.int8), "z")]
    for dq_inputs in (["", "s", "z"], ["q", "", "z"]):
        nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]), helper.make_node("DequantizeLinear", dq_inputs, ["y"])]
        graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], inits)
        path = tmp_path / "bad.onnx"
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
        np.savez(tmp_path / "in.npz", x=np.ones(2, np.float32))
        proc = cli("run", path, "--inputs", tmp_path / "in.npz", check=False)
        assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
