import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session")
def switchyard_bin():
    path = os.environ.get("SWITCHYARD_BIN", str(ROOT / "build" / "switchyard"))
    assert Path(path).exists(), f"build the CLI first: {path}"
    return path


@pytest.fixture
def cli(switchyard_bin):
    def run(*args, check=True, env_extra=None):
        env = {**os.environ, **(env_extra or {})}
        proc = subprocess.run([switchyard_bin, *map(str, args)], capture_output=True, text=True, timeout=600, env=env)
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc
    return run
