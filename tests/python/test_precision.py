"""Execution precisions: BF16 and INT8 (dynamic activations) MoE experts against FP32 (the seed
classifier's accuracy on Fashion-MNIST, an LLM-shaped MoE layer against ONNX Runtime's FP32 output),
and unsupported precisions refused."""
import re

import numpy as np
import onnx
import pytest

from conftest import ROOT
from ms_moe_models import build  # noqa: E402

ort = pytest.importorskip("onnxruntime")


def accuracy(cli, precision):
    out = cli("eval", ROOT / "models" / "seed_classifier.onnx", "--precision", precision).stdout
    return float(re.search(r"accuracy:\s+([0-9.]+)", out).group(1))


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_seed_classifier_within_0_3_points_of_fp32(cli, precision):
    assert abs(accuracy(cli, precision) - accuracy(cli, "fp32")) <= 0.003


@pytest.mark.parametrize("precision", ["fp16", "bf16", "int8"])
@pytest.mark.parametrize("activation", ["relu", "swiglu"])
def test_moe_layer_close_to_onnxruntime_fp32(cli, tmp_path, activation, precision):
    model = build(E=8, k=2, H=128, I=256, activation=activation, normalize=1, biases=True,
                  fusion=1 if activation == "swiglu" else 0)
    path = tmp_path / "moe.onnx"
    onnx.save(model, path)
    x = np.random.default_rng(3).normal(0, 1, (64, 128)).astype(np.float32)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.savez(tmp_path / "in.npz", x=x)
    cli("run", path, "--inputs", tmp_path / "in.npz", "--outputs", tmp_path / "out.npz", "--precision", precision)
    got = np.load(tmp_path / "out.npz")["y"]
    cosine = float(np.sum(got * want) / np.sqrt(np.sum(got * got) * np.sum(want * want)))
    assert cosine >= 0.9995
    # INT8 quantizes the SwiGLU product per row, whose largest values set the step: a few outputs
    # move by up to ~3% of the largest one (cosine stays >= 0.9995).
    assert np.abs(got - want).max() <= (0.04 if precision == "int8" else 0.02) * np.abs(want).max()
    assert not np.array_equal(got, want)  # the lower precision really ran


def test_int4_moe_layer_close_to_fp32_and_group_checked(cli, tmp_path):
    model = build(E=8, k=2, H=128, I=256, activation="swiglu", normalize=1, biases=True, fusion=1)
    path = tmp_path / "moe.onnx"
    onnx.save(model, path)
    x = np.random.default_rng(4).normal(0, 1, (16, 128)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    outs = {}
    for p in ("fp32", "int4"):
        cli("run", path, "--inputs", tmp_path / "in.npz", "--outputs", tmp_path / f"{p}.npz", "--precision", p)
        outs[p] = np.load(tmp_path / f"{p}.npz")["y"].astype(np.float64)
    cosine = np.sum(outs["fp32"] * outs["int4"]) / np.sqrt(np.sum(outs["fp32"] ** 2) * np.sum(outs["int4"] ** 2))
    assert cosine >= 0.99  # 16 levels per group of 32 and column, three projections
    proc = cli("run", path, "--inputs", tmp_path / "in.npz", "--precision", "int4", "--weight-group", "30", check=False)
    assert proc.returncode != 0 and "multiple of 4" in proc.stderr


def test_unknown_precision_is_refused_in_one_line(cli):
    proc = cli("run", ROOT / "models" / "seed_classifier.onnx", "--precision", "int3", check=False)
    assert proc.returncode != 0
    first = proc.stderr.strip().splitlines()[0]
    assert "precision" in first and "bf16" in first  # says what is accepted


def test_python_session_precision():
    switchyard = pytest.importorskip("switchyard")
    path = str(ROOT / "models" / "seed_classifier.onnx")
    x = np.random.default_rng(0).random((8, 1, 28, 28), dtype=np.float32)
    fp32 = switchyard.InferenceSession(path).run(None, {"image": x})[0]
    bf16 = switchyard.InferenceSession(path, precision="bf16").run(None, {"image": x})[0]
    assert np.abs(bf16 - fp32).max() <= 0.05 * np.abs(fp32).max()
    with pytest.raises(Exception, match="precision 'int3' is not supported"):
        switchyard.InferenceSession(path, precision="int3")


def test_per_layer_precision_override(cli, tmp_path):
    model = build(E=8, k=2, H=128, I=256, activation="swiglu", normalize=1, biases=True, fusion=1)
    model.graph.node[1].name = "experts"  # the MoE node
    path = tmp_path / "moe.onnx"
    onnx.save(model, path)
    x = np.random.default_rng(5).normal(0, 1, (8, 128)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x)

    def run(*options):
        cli("run", path, "--inputs", tmp_path / "in.npz", "--outputs", tmp_path / "out.npz", *options)
        return np.load(tmp_path / "out.npz")["y"]
    fp32 = run()
    assert not np.array_equal(run("--precision", "int4"), fp32)
    assert np.array_equal(run("--precision", "int4", "--precision-override", "experts=fp32"), fp32)
    assert np.array_equal(run("--precision-override", "experts=int8"), run("--precision", "int8"))
    for bad, message in (("nope=int8", "no node named 'nope'"), ("experts", "expected NODE=PRECISION"),
                         ("experts=int3", "precision 'int3' is not supported")):
        proc = cli("run", path, "--inputs", tmp_path / "in.npz", "--precision-override", bad, check=False)
        assert proc.returncode != 0 and message in proc.stderr.strip().splitlines()[0]
    switchyard = pytest.importorskip("switchyard")
    session = switchyard.InferenceSession(str(path), precision="int4", precision_overrides={"experts": "fp32"})
    assert np.array_equal(session.run(None, {"x": x})[0], fp32)


@pytest.mark.parametrize("precision, tolerance", [("fp16", 1e-3), ("bf16", 2e-2), ("int8", 3e-2), ("int8-weights", 2e-2),
                                                  ("int4", 0.15), ("int4-weights", 0.15)])
def test_dense_layers_run_at_the_precision(precision, tolerance):
    """The MLP fixture (MatMul/Gemm layers only) follows the compile precision, within its tolerance."""
    switchyard = pytest.importorskip("switchyard")
    fixtures = ROOT / "tests" / "fixtures"
    feeds = dict(np.load(fixtures / "mlp_trace.inputs.npz"))
    expected = np.load(fixtures / "mlp_trace.expected.npz")
    fp32 = expected[list(expected.keys())[0]]
    ours = switchyard.InferenceSession(str(fixtures / "mlp_trace.onnx"), precision=precision).run(None, feeds)[0]
    assert not np.array_equal(ours, fp32)
    assert np.linalg.norm(ours - fp32) <= tolerance * np.linalg.norm(fp32)


def test_unfused_routers_stay_fp32():
    """An MoE layer left unfused: its router MatMul keeps FP32 at every precision, so routing is unchanged."""
    switchyard = pytest.importorskip("switchyard")
    path = str(ROOT / "tests" / "fixtures" / "seed_e8_k2_script.onnx")
    session = switchyard.InferenceSession(path, fuse_moe=False, precision="int4")
    assert any("router" in n and "stays FP32" in n for n in session.compile_notes)
    x = np.random.default_rng(2).random((64, 1, 28, 28), dtype=np.float32)
    fp32 = switchyard.InferenceSession(path, fuse_moe=False).run(None, {"image": x})[0]
    assert (session.run(None, {"image": x})[0].argmax(1) == fp32.argmax(1)).mean() >= 0.95
