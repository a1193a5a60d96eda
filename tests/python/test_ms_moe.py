"""com.microsoft.MoE models: Switchyard's results match ONNX Runtime's.

ONNX Runtime's CPU MoE accepts only interleaved SwiGLU (swiglu_fusion=1); Switchyard also reads 0 and 2,
which are checked against the same weights in fusion-1 form below."""
import numpy as np
import onnx
import pytest

ort = pytest.importorskip("onnxruntime")

from ms_moe_models import build  # noqa: E402

CASES = [
    dict(E=8, k=2, H=32, I=64, activation="relu", normalize=0),
    dict(E=8, k=2, H=32, I=64, activation="relu", normalize=1, biases=False),
    dict(E=4, k=1, H=16, I=24, activation="gelu", normalize=0),
    dict(E=16, k=4, H=24, I=40, activation="silu", normalize=1),
    dict(E=4, k=2, H=16, I=16, activation="identity", normalize=0),
    dict(E=8, k=2, H=32, I=48, activation="swiglu", normalize=1, fusion=1),
    dict(E=8, k=2, H=32, I=48, activation="swiglu", normalize=0, fusion=1, biases=False),
    dict(E=8, k=2, H=32, I=48, activation="swiglu", normalize=1, fusion=1, alpha=1.702, beta=1.0),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_matches_onnxruntime(cli, tmp_path, case):
    model = build(**case)
    path = tmp_path / "moe.onnx"
    onnx.save(model, path)
    x = np.random.default_rng(1).normal(0, 1, (37, case["H"])).astype(np.float32)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.savez(tmp_path / "in.npz", x=x)
    cli("run", path, "--inputs", tmp_path / "in.npz", "--outputs", tmp_path / "out.npz")
    got = np.load(tmp_path / "out.npz")["y"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("fusion", [0, 2])
def test_swiglu_layouts_agree(cli, tmp_path, fusion):
    """The same SwiGLU weights given as separate fc1/fc3 (0) or halves (2) give fusion 1's result."""
    from onnx import numpy_helper
    ref = build(E=4, k=2, H=16, I=24, activation="swiglu", normalize=1, fusion=1, biases=True, seed=3)
    inits = {i.name: numpy_helper.to_array(i) for i in ref.graph.initializer}
    other = build(E=4, k=2, H=16, I=24, activation="swiglu", normalize=1, fusion=fusion, biases=True, seed=3)
    g_w, l_w = inits["fc1_w"][:, 0::2], inits["fc1_w"][:, 1::2]
    g_b, l_b = inits["fc1_b"][:, 0::2], inits["fc1_b"][:, 1::2]
    replace = {"router_w": inits["router_w"], "fc2_w": inits["fc2_w"], "fc2_b": inits["fc2_b"]}
    if fusion == 0:
        replace.update(fc1_w=g_w, fc1_b=g_b, fc3_w=l_w, fc3_b=l_b)
    else:
        replace.update(fc1_w=np.concatenate([g_w, l_w], 1), fc1_b=np.concatenate([g_b, l_b], 1))
    for init in other.graph.initializer:
        init.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(replace[init.name]), init.name))
    x = np.random.default_rng(2).normal(0, 1, (11, 16)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    outs = []
    for name, model in (("ref", ref), ("other", other)):
        onnx.save(model, tmp_path / f"{name}.onnx")
        cli("run", tmp_path / f"{name}.onnx", "--inputs", tmp_path / "in.npz", "--outputs", tmp_path / f"{name}.npz")
        outs.append(np.load(tmp_path / f"{name}.npz")["y"])
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation, fusion", [("relu", 0), ("swiglu", 1)])
@pytest.mark.parametrize("bits, block", [(8, 0), (4, 0), (4, 32)])
def test_qmoe_matches_onnxruntime(tmp_path, activation, fusion, bits, block):
    """com.microsoft.QMoE (INT8 / INT4 expert weights, per row or per block): Switchyard runs the file's codes
    with INT8 activations; with FP32 activations it agrees with ONNX Runtime up to its FP16 scales."""
    from ms_moe_models import to_qmoe
    switchyard = pytest.importorskip("switchyard")
    path = tmp_path / "qmoe.onnx"
    onnx.save(to_qmoe(build(E=4, k=2, H=64, I=96, activation=activation, normalize=1, fusion=fusion), bits, block), path)
    x = np.random.default_rng(1).normal(0, 1, (16, 64)).astype(np.float32)
    theirs = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    session = switchyard.InferenceSession(str(path))
    note = next(n for n in session.compile_notes if n.startswith("QMoE"))
    assert note.endswith(f"INT{bits}; runs at precision int{bits}")  # activations quantized per row at run time
    assert np.linalg.norm(session.run(None, {"x": x})[0] - theirs) <= 0.03 * np.linalg.norm(theirs)
    # With FP32 activations (a per-node override), exactly ONNX Runtime's arithmetic up to FP16 scales.
    exact = switchyard.InferenceSession(str(path), precision_overrides={note.split("'")[1]: f"int{bits}-weights"})
    assert np.linalg.norm(exact.run(None, {"x": x})[0] - theirs) <= 2e-3 * np.linalg.norm(theirs)


@pytest.mark.parametrize("change, message", [
    (lambda n: n.attribute.extend([onnx.helper.make_attribute("expert_weight_bits", 3)]), "expert_weight_bits must be 4 or 8"),
    (lambda n: n.input.extend(["", "", "", "", "", "fc1_w_quantized"]), "zero points (asymmetric weights) are not supported"),
    (lambda n: n.input.__setitem__(3, "fc2_w_scales"), "scales"),
])
def test_qmoe_errors_are_one_line(cli, tmp_path, change, message):
    from ms_moe_models import to_qmoe
    model = to_qmoe(build(E=4, k=2, H=64, I=96), 8)
    node = model.graph.node[1]
    if "expert_weight_bits must" in message:
        kept = [a for a in node.attribute if a.name != "expert_weight_bits"]
        del node.attribute[:]
        node.attribute.extend(kept)
    change(node)
    path = tmp_path / "bad.onnx"
    onnx.save(model, path)
    np.savez(tmp_path / "in.npz", x=np.zeros((2, 64), np.float32))
    proc = cli("run", path, "--inputs", tmp_path / "in.npz", check=False)
    assert proc.returncode != 0 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_quantize_weights_only_int4_writes_qmoe(cli, tmp_path):
    """`switchyard quantize --weights-only --bits 4 --block-size 32`: com.microsoft.MoE becomes QMoE, which
    ONNX Runtime runs with its own INT4 kernel and Switchyard with the same codes."""
    switchyard = pytest.importorskip("switchyard")
    source, out = tmp_path / "moe.onnx", tmp_path / "moe_int4.onnx"
    onnx.save(build(E=4, k=2, H=64, I=96, activation="swiglu", normalize=1, fusion=1), source)
    proc = cli("quantize", source, "-o", out, "--weights-only", "--bits", "4", "--block-size", "32")
    assert "com.microsoft.QMoE, INT4 experts, block 32" in proc.stderr
    model = onnx.load(out)
    assert [n.op_type for n in model.graph.node] == ["MatMul", "QMoE"]
    x = np.random.default_rng(3).normal(0, 1, (8, 64)).astype(np.float32)
    theirs = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    ours = switchyard.InferenceSession(str(out)).run(None, {"x": x})[0]
    assert np.linalg.norm(ours - theirs) <= 0.03 * np.linalg.norm(theirs)
    bad = cli("quantize", source, "-o", tmp_path / "x.onnx", "--weights-only", "--bits", "4", "--block-size", "24", check=False)
    assert bad.returncode == 1 and "--block-size must be 0 or a positive multiple of 16" in bad.stderr
