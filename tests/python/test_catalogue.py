"""The bad-input catalogue (tests/catalogue, made by scripts/make_catalogue.py) through the CLI and the
Python API: every entry gives its expected one-line error and a non-zero exit / exception (or runs, for
the hostile-but-valid ones), and the same session keeps serving good requests afterwards."""
import json

import numpy as np
import pytest

from conftest import ROOT

CATALOGUE = ROOT / "tests" / "catalogue"
ENTRIES = json.loads((CATALOGUE / "manifest.json").read_text())["entries"]
GOOD = dict(np.load(CATALOGUE / "good.npz"))


def test_catalogue_is_large_enough():
    assert len(ENTRIES) >= 30


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_cli(cli, tmp_path, entry):
    args = ["run", CATALOGUE / entry["model"]]
    if entry["inputs"]:
        path = CATALOGUE / entry["inputs"]
        args += ["--input", f"image={path}"] if path.suffix == ".npy" else ["--inputs", path]
    out = tmp_path / "out.npz"
    proc = cli(*args, "--outputs", out, check=False)
    if entry["expect"] == "ok":
        assert proc.returncode == 0, proc.stderr
        return
    assert 0 < proc.returncode < 128, f"exit {proc.returncode}: {proc.stderr}"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("switchyard: error: "), proc.stderr
    assert entry["expect"] in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("entry", [e for e in ENTRIES if not e["cli_only"]], ids=lambda e: e["name"])
def test_python_api(entry):
    switchyard = pytest.importorskip("switchyard")  # the CLI tests above run without the module too
    feeds = dict(np.load(CATALOGUE / entry["inputs"])) if entry["inputs"] else {}
    if entry["expect"] == "ok":
        session = switchyard.InferenceSession(str(CATALOGUE / entry["model"]))
        session.run(None, feeds)
        return
    session = None
    with pytest.raises(switchyard.SwitchyardError, match=None) as info:
        session = switchyard.InferenceSession(str(CATALOGUE / entry["model"]))
        session.run(None, feeds)
    assert entry["expect"] in str(info.value)
    if session is not None and entry["model"] == "seed_classifier.onnx":  # no lost state
        assert session.run(None, GOOD)[0].shape == (2, 10)
