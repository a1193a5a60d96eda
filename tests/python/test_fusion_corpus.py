"""MoE fusion on the export corpus (tests/corpus, written by scripts/moe_corpus.py and friends): every
variant fuses every MoE layer, matches PyTorch and its own unfused run."""
import pytest

import corpus_check

pytest.importorskip("switchyard")  # the sanitizer run has the CLI only (tests/cpp/fusion_corpus_test.cpp runs there)

ENTRIES = corpus_check.manifest()


def test_corpus_is_large_and_varied():
    assert len({e["variant"] for e in ENTRIES}) >= 30
    for axis in ("router", "dispatch", "body"):
        assert len({e[axis] for e in ENTRIES}) >= 5, axis


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_corpus_variant_fuses_and_matches(entry):
    r = corpus_check.check(entry)
    assert not r.error, r.error
    assert r.fused_layers == r.expected_layers, f"fused {r.fused_layers} of {r.layers} MoE layers: {r.reasons}"
    if entry.get("expect_unfused"):  # left unfused, and the reason says why
        assert any(entry["expect_unfused"] in reason for reason in r.reasons), r.reasons
    assert r.error_vs_torch <= 1e-4
    assert r.error_vs_unfused <= 1e-5
