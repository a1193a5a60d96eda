"""`switchyard bench`: the sweep table, JSON and chart, async requests with auto-batching, dataset
inputs, and one-line errors. Behaviour only: the numbers are not checked (tests never time things)."""
import json

from conftest import ROOT

SEED = ROOT / "models" / "seed_classifier.onnx"
QUICK = ["--duration", "0.2", "--warmup", "0.05"]


def test_batch_sweep_writes_table_json_and_chart(cli, tmp_path):
    out, chart = tmp_path / "bench.json", tmp_path / "bench.svg"
    proc = cli("bench", SEED, "--batch", "1,16,64,256", *QUICK, "--json", out, "--plot", chart)
    for batch in (1, 16, 64, 256):
        assert f"batch {batch:>5}:" in proc.stdout
    result = json.loads(out.read_text())
    assert [r["batch"] for r in result["results"]] == [1, 16, 64, 256]
    for r in result["results"]:
        assert r["calls"] > 0 and r["throughput"] > 0 and r["min_us"] <= r["p50_us"] <= r["p99_us"] <= r["max_us"]
    svg = chart.read_text()
    assert svg.startswith("<svg") or "<svg" in svg[:200]


def test_throughput_hint_stacks_requests_in_flight(cli, tmp_path):
    out = tmp_path / "bench.json"
    proc = cli("bench", SEED, "--batch", "1", "--hint", "throughput", "--requests", "8", *QUICK, "--json", out)
    result = json.loads(out.read_text())
    assert result["hint"] == "throughput" and result["requests"] == 8
    assert result["auto_batch"] > 1
    assert "auto-batching" in proc.stdout
    off = tmp_path / "off.json"
    cli("bench", SEED, "--batch", "1", "--hint", "throughput", "--requests", "8", "--auto-batch", "0", *QUICK, "--json", off)
    result = json.loads(off.read_text())
    assert result["auto_batch"] == 1 and result["batched_runs"] == 0


def test_dataset_inputs(cli, tmp_path):
    out = tmp_path / "bench.json"
    cli("bench", SEED, "--dataset", "fashion-mnist", "--batch", "64", *QUICK, "--json", out)
    assert json.loads(out.read_text())["results"][0]["calls"] > 0


def test_errors_are_one_line(cli, tmp_path):
    proc = cli("bench", SEED, "--inputs", tmp_path / "missing.npz", *QUICK, check=False)
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1
    proc = cli("bench", SEED, "--dataset", "fashion-mnist", "--data-dir", tmp_path, *QUICK, check=False)
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1
