"""`switchyard run` matches PyTorch on every exported fixture (max abs diff <= 1e-4)."""
import numpy as np
import pytest

from conftest import FIXTURES, ROOT

NAMES = sorted(p.stem for p in FIXTURES.glob("*.onnx"))


@pytest.mark.parametrize("name", NAMES)
def test_run_matches_pytorch(cli, tmp_path, name):
    out = tmp_path / "out.npz"
    proc = cli("run", FIXTURES / f"{name}.onnx", "--inputs", FIXTURES / f"{name}.inputs.npz", "--outputs", out)
    expected = np.load(FIXTURES / f"{name}.expected.npz")
    got = np.load(out)
    assert sorted(got.files) == sorted(expected.files)
    for key in expected.files:
        assert got[key].shape == expected[key].shape
        assert got[key].dtype == expected[key].dtype
        assert np.max(np.abs(got[key] - expected[key])) <= 1e-4, key
        assert key in proc.stdout  # names, shapes and dtypes are printed


def test_run_with_single_npy_input(cli, tmp_path):
    name = "seed_e8_k2_script"
    image = np.load(FIXTURES / f"{name}.inputs.npz")["image"]
    np.save(tmp_path / "image.npy", image)
    out = tmp_path / "out.npz"
    cli("run", FIXTURES / f"{name}.onnx", "--input", f"image={tmp_path / 'image.npy'}", "--outputs", out)
    np.testing.assert_allclose(np.load(out)["logits"], np.load(FIXTURES / f"{name}.expected.npz")["logits"], atol=1e-4)


def test_run_accepts_any_batch_size(cli, tmp_path):
    for batch in (1, 64, 257):
        np.savez(tmp_path / "in.npz", image=np.random.default_rng(batch).random((batch, 1, 28, 28), np.float32))
        proc = cli("run", ROOT / "models" / "seed_classifier.onnx", "--inputs", tmp_path / "in.npz")
        assert f"logits: float32 [{batch},10]" in proc.stdout


def test_inspect_json(cli):
    import json
    proc = cli("inspect", ROOT / "models" / "seed_classifier.onnx", "--json")
    info = json.loads(proc.stdout)
    assert info["inputs"][0]["name"] == "image"
    assert info["inputs"][0]["shape"] == "[batch,1,28,28]"
    assert info["op_histogram"]["NonZero"] == 8
    assert info["parameters"] == 784 * 16 + 16 + 8 * 16 + 8 * (16 * 16 + 16) * 2 + 16 * 10 + 10  # the noise gate is training-only
    assert info["unsupported_ops"] == []


def test_eval_matches_pytorch_count_on_a_slice(cli):
    proc = cli("eval", ROOT / "models" / "seed_classifier.onnx", "--dataset", "fashion-mnist", "--limit", "1000")
    assert "accuracy:" in proc.stdout and "/ 1000 correct" in proc.stdout


def test_external_data_in_the_model_folder(cli, tmp_path):
    import onnx
    name = "seed_e8_k2_script"
    model = onnx.load(FIXTURES / f"{name}.onnx")
    onnx.save(model, tmp_path / "ext.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    assert (tmp_path / "weights.bin").stat().st_size > 10000
    out = tmp_path / "out.npz"
    cli("run", tmp_path / "ext.onnx", "--inputs", FIXTURES / f"{name}.inputs.npz", "--outputs", out)
    np.testing.assert_allclose(np.load(out)["logits"], np.load(FIXTURES / f"{name}.expected.npz")["logits"], atol=1e-4)


def test_expert_stats_and_no_fuse(cli, tmp_path):
    name = "seed_e8_k2_script"
    fused = cli("run", FIXTURES / f"{name}.onnx", "--inputs", FIXTURES / f"{name}.inputs.npz", "--expert-stats",
                "--outputs", tmp_path / "a.npz")
    assert "expert load of moe_fused_" in fused.stdout and "(14 routed token slots)" in fused.stdout
    plain = cli("run", FIXTURES / f"{name}.onnx", "--inputs", FIXTURES / f"{name}.inputs.npz", "--expert-stats",
                "--no-fuse", "--outputs", tmp_path / "b.npz")
    assert "no fused MoE layer" in plain.stdout
    np.testing.assert_allclose(np.load(tmp_path / "a.npz")["logits"], np.load(tmp_path / "b.npz")["logits"], rtol=1e-5, atol=1e-6)


def test_inspect_lists_fused_layers(cli):
    proc = cli("inspect", ROOT / "models" / "seed_classifier.onnx")
    assert "fused MoE layer" in proc.stdout and "experts=8 k=2 hidden=16 inter=16 activation=relu" in proc.stdout
    assert "routing=softmax-topk-softmax" in proc.stdout
