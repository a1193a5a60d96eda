"""The Python examples run and classify like the engine."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT

pytest.importorskip("switchyard")


@pytest.mark.parametrize("script", ["ort_style_session.py", "async_queue.py"])
def test_example_runs(script):
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "python" / script), str(ROOT / "models" / "seed_classifier.onnx")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    correct = int(proc.stdout.split(":")[1].split("/")[0])
    assert correct > 800  # the shipped classifier gets ~87% of test images right
