"""switchyard quantize: static INT8 QDQ models of the seed classifier, calibrated on Fashion-MNIST or
an .npz, that ONNX Runtime and Switchyard both run at FP32's accuracy; routers kept FP32; clear errors."""
import gzip
import re
import sys

import numpy as np
import onnx
import pytest

from conftest import ROOT

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxruntime.quantization")
SEED = ROOT / "models" / "seed_classifier.onnx"
DATA = "/usr/share/datasets/fashion-mnist/"


@pytest.fixture(autouse=True)
def same_python(monkeypatch):
    monkeypatch.setenv("SWITCHYARD_PYTHON", sys.executable)


def load_images(n):
    with gzip.open(DATA + "t10k-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:n].astype(np.float32) / 255
    with gzip.open(DATA + "t10k-labels-idx1-ubyte.gz") as f:
        return x, np.frombuffer(f.read(), np.uint8, offset=8)[:n]


def ort_accuracy(path, x, y):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return float(np.mean(session.run(None, {"image": x})[0].argmax(1) == y))


@pytest.fixture(scope="module")
def quantized(tmp_path_factory, switchyard_bin):
    import os
    import subprocess
    out = tmp_path_factory.mktemp("q") / "seed_int8.onnx"
    proc = subprocess.run([switchyard_bin, "quantize", str(SEED), "-o", str(out), "--samples", "256"], capture_output=True,
                          text=True, env={**os.environ, "SWITCHYARD_PYTHON": sys.executable}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "calibrating: batch 4/4" in proc.stderr  # progress
    return out


def test_output_is_valid_qdq_onnx_with_fp32_router(quantized):
    model = onnx.load(quantized)
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") > 10 and "DequantizeLinear" in ops
    producer = {o: n for n in model.graph.node for o in n.output}
    router = next(n for n in model.graph.node if n.name == "/moe/gate/MatMul")
    # The router's weights stay FP32 (its input is the activation the experts share, as quantized).
    weights = {t.name for t in model.graph.initializer}
    assert router.input[1] in weights and producer.get(router.input[1]) is None
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["switchyard.preprocess"].startswith("scale=") and meta["switchyard.quantized"].startswith("int8")


def test_onnxruntime_and_switchyard_keep_fp32_accuracy(quantized, cli):
    x, y = load_images(2000)
    fp32, int8 = ort_accuracy(SEED, x, y), ort_accuracy(quantized, x, y)
    assert abs(int8 - fp32) <= 0.01
    out = cli("eval", quantized, "--dataset", "fashion-mnist", "--limit", "2000").stdout
    ours = float(re.search(r"accuracy:\s+([0-9.]+)", out).group(1))
    assert abs(ours - int8) <= 0.005  # same QDQ model, same answers up to the activation rounding
    # Switchyard sees through the Q/DQ pairs: the routing is fused, as in the FP32 model.
    assert "fused MoE layer" in cli("inspect", quantized).stdout


def test_npz_calibration_and_percentile(tmp_path, cli):
    x, _ = load_images(128)
    np.savez(tmp_path / "calib.npz", image=x)
    out = tmp_path / "p.onnx"
    cli("quantize", SEED, "-o", out, "--calibration", tmp_path / "calib.npz", "--method", "percentile",
        "--exclude-types", "Gemm")
    model = onnx.load(out)
    producer = {o: n for n in model.graph.node for o in n.output}
    gemms = [n for n in model.graph.node if n.op_type == "Gemm"]
    weights = {t.name: t for t in model.graph.initializer}
    assert gemms and all(n.input[1] in weights and weights[n.input[1]].data_type == onnx.TensorProto.FLOAT
                         for n in gemms)  # ignored scope by type: FP32 weights


@pytest.mark.parametrize("args, message", [
    (["missing.onnx", "-o", "{tmp}/o.onnx"], "model 'missing.onnx' not found"),
    ([SEED, "-o", "{tmp}/no/such/dir/o.onnx"], "does not exist"),
    ([SEED, "-o", "{tmp}/o.onnx", "--calibration", "{tmp}/none.npz"], "not found"),
    ([SEED, "-o", "{tmp}/o.onnx", "--exclude-nodes", "nope"], "no node named 'nope'"),
    ([SEED, "-o", "{tmp}/o.onnx", "--calibration", "{tmp}/wrong.npz"], "has no array 'image'"),
])
def test_errors_are_one_line_and_leave_nothing(tmp_path, cli, args, message):
    np.savez(tmp_path / "wrong.npz", other=np.zeros((4, 784), np.float32))
    proc = cli("quantize", *[str(a).format(tmp=tmp_path) for a in args], check=False)
    assert proc.returncode == 1
    assert message in proc.stderr and proc.stderr.count("switchyard: error") == 1
    assert not list(tmp_path.glob("*.onnx"))
