"""Per-block image MoE (issue 14): the shipped x4 upsampler in its three export forms and the corpus of
independently written variants (scripts/spatial_moe_corpus.py) fuse into ai.switchyard::SpatialMoE and
match PyTorch on image sizes other than the export example; `switchyard run --image` writes the
upscaled picture and the expert map."""
import glob
import os

import numpy as np
import pytest

from conftest import FIXTURES, ROOT

MODELS = ROOT / "models" / "spatial_moe"
SPATIAL = FIXTURES / "spatial"
CORPUS = sorted(glob.glob(str(SPATIAL / "corpus" / "*.onnx")))
FORMS = ["dense", "blocks", "native"]


def session(path, **kw):
    switchyard = pytest.importorskip("switchyard")
    return switchyard.InferenceSession(str(path), threads=2, **kw)


def fused(sess):
    return [n for n in sess.compile_notes if n.startswith("fused spatial MoE layer")]


@pytest.mark.parametrize("top", [1, 2])
@pytest.mark.parametrize("size", ["24x40", "48x32"])
@pytest.mark.parametrize("form", FORMS)
def test_upsampler_forms_match_pytorch(form, size, top):
    suffix = "" if top == 1 else "_top2"
    data = np.load(SPATIAL / f"upsampler_{size}_top{top}.npz")
    sess = session(MODELS / f"upsampler_x4_{form}{suffix}.onnx")
    if form != "native":  # the dense and the block-batch exports are made sparse
        assert len(fused(sess)) == 1, sess.compile_notes
    (out,) = sess.run(None, {"image": data["image"]})
    np.testing.assert_allclose(out, data["upscaled"], atol=1e-4, rtol=0)


def test_fused_equals_unfused_dense_run():
    data = np.load(SPATIAL / "upsampler_48x32_top2.npz")
    path = MODELS / "upsampler_x4_dense_top2.onnx"
    (a,) = session(path).run(None, {"image": data["image"]})
    (b,) = session(path, fuse_moe=False).run(None, {"image": data["image"]})
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("path", CORPUS, ids=[os.path.basename(p)[:-5] for p in CORPUS])
def test_corpus_variant(path):
    data = np.load(path[:-5] + ".npz")
    sess = session(path)
    if int(data["fused"]):
        assert len(fused(sess)) == 1, sess.compile_notes
    else:  # left unfused, with a one-line reason
        assert not fused(sess) and any("not fused as spatial MoE" in n for n in sess.compile_notes), sess.compile_notes
    (out,) = sess.run(None, {"image": data["image"]})
    np.testing.assert_allclose(out, data["expected"], atol=1e-4, rtol=0)


def test_corpus_is_varied():
    assert len(CORPUS) >= 10
    assert sum(int(np.load(p[:-5] + ".npz")["fused"]) for p in CORPUS) >= 9
    assert sum(p.endswith("_dynamo.onnx") for p in CORPUS) >= 4  # torch 2's dynamo exporter


def test_image_size_not_multiple_of_block_is_a_clear_error(cli, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 30, 40), np.float32))
    for form in ("native", "dense"):
        r = cli("run", MODELS / f"upsampler_x4_{form}.onnx", "--input", f"image={tmp_path / 'x.npy'}", check=False)
        assert r.returncode != 0
        assert "not a whole number of 8x8 blocks" in r.stderr, r.stderr
        assert r.stderr.count("\n") == 1


def test_run_image_writes_picture_and_expert_map(cli, tmp_path):
    from PIL import Image

    src = ROOT / "examples" / "images" / "fashion_lr.png"
    out, emap = tmp_path / "up.png", tmp_path / "map.png"
    r = cli("run", MODELS / "upsampler_x4_dense.onnx", "--image", src, "--output-image", out, "--expert-map", emap,
            "--expert-stats")
    assert "expert load of" in r.stdout
    low = np.asarray(Image.open(src), dtype=np.float32)[None, None] / 255.0
    (want,) = session(MODELS / "upsampler_x4_dense.onnx").run(None, {"image": low})
    up = np.asarray(Image.open(out))
    assert up.shape == (low.shape[2] * 4, low.shape[3] * 4) and up.dtype == np.uint8
    assert np.abs(up.astype(np.int32) - np.round(np.clip(want[0, 0], 0, 1) * 255)).max() <= 1
    m = np.asarray(Image.open(emap).convert("RGB"))
    assert m.shape == (up.shape[0], up.shape[1], 3)
    # Every 32x32 output block was drawn with one expert colour (blended with the picture): the colour
    # part differs between blocks of different experts, so more than one expert must show.
    blocks = m.reshape(low.shape[2] // 8, 32, low.shape[3] // 8, 32, 3).astype(np.int32)
    tint = blocks - 0.45 * np.repeat(np.repeat(up.reshape(blocks.shape[0], 32, blocks.shape[2], 32)[..., None], 1, -1), 3, -1)
    colours = {tuple(np.round(tint[i, 0, j, 0] / 0.55 / 8).astype(int)) for i in range(blocks.shape[0]) for j in range(blocks.shape[2])}
    assert len(colours) >= 2


def test_run_image_errors_are_one_line(cli, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png at all")
    r = cli("run", MODELS / "upsampler_x4_dense.onnx", "--image", bad, "--output-image", tmp_path / "o.png", check=False)
    assert r.returncode != 0 and "cannot read PNG" in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "o.png").exists()
    r = cli("run", FIXTURES / "mixtral_block_trace.onnx", "--image", ROOT / "examples" / "images" / "fashion_lr.png", check=False)
    assert r.returncode != 0 and "--image" in r.stderr


def test_python_example_upscales(tmp_path):
    import subprocess
    import sys

    pytest.importorskip("switchyard")
    out = tmp_path / "up.png"
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "python" / "upscale_image.py"),
                           str(ROOT / "examples" / "images" / "fashion_lr.png"), str(out)],
                          capture_output=True, text=True, timeout=300, env={**os.environ})
    assert proc.returncode == 0, proc.stderr
    assert "fused spatial MoE layer" in proc.stdout and out.exists()
