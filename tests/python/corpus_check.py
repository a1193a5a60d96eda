"""Runs one corpus model fused and unfused in Switchyard and compares both with PyTorch's outputs.

Shared by tests/python/test_fusion_corpus.py and bench/fusion_table.py (which writes docs/fusion.md).
"""
import json
import os
from dataclasses import dataclass, field
from typing import List

import numpy as np

CORPUS_DIR = os.path.join(os.path.dirname(__file__), "..", "corpus")


def manifest(corpus_dir: str = CORPUS_DIR):
    with open(os.path.join(corpus_dir, "manifest.json")) as f:
        return json.load(f)


@dataclass
class CorpusResult:
    name: str
    layers: int
    fused_layers: int = 0
    reasons: List[str] = field(default_factory=list)  # notes on what was not fused
    error_vs_torch: float = float("nan")
    error_vs_unfused: float = float("nan")  # relative to the output's scale
    error: str = ""                         # a failure to load or run
    expected_layers: int = 0                # layers that must fuse (0 for capacity-limited routing)

    @property
    def ok(self):
        return not self.error and self.fused_layers == self.expected_layers and self.error_vs_torch <= 1e-4 and \
            self.error_vs_unfused <= 1e-5


def check(entry, corpus_dir: str = CORPUS_DIR, threads: int = 1) -> CorpusResult:
    import switchyard

    name = entry["name"]
    path = os.path.join(corpus_dir, name + ".onnx")
    inputs = dict(np.load(os.path.join(corpus_dir, name + ".inputs.npz")))
    expected = dict(np.load(os.path.join(corpus_dir, name + ".expected.npz")))
    result = CorpusResult(name, entry.get("layers", 1))
    try:
        fused = switchyard.InferenceSession(path, threads=threads)
        notes = fused.compile_notes
        result.fused_layers = sum(1 for n in notes if n.startswith("fused MoE layer"))
        result.expected_layers = 0 if entry.get("expect_unfused") else result.layers
        result.reasons = [n for n in notes if "not fused" in n]
        plain = switchyard.InferenceSession(path, threads=threads, fuse_moe=False)
        names = [o.name for o in fused.get_outputs()]
        got = fused.run(None, inputs)
        ref = plain.run(None, inputs)
        result.error_vs_torch = max(float(np.max(np.abs(g - expected[n]))) for g, n in zip(got, names))
        result.error_vs_unfused = max(float(np.max(np.abs(g - r)) / max(1e-6, float(np.max(np.abs(r)))))
                                      for g, r in zip(got, ref))
    except Exception as e:  # reported per model, never fatal for the table
        result.error = str(e).splitlines()[0]
    return result
