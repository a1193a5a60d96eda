"""MoE fusion, measured: the corpus table (docs/fusion.md) and the large dense / gathered-weight exports.

  python3 bench/fusion.py                       # every corpus model: fused?, errors, speed vs ONNX Runtime
                                                # -> docs/fusion.md, bench/results/fusion.json
  python3 bench/fusion.py --large build/large_models [--tokens 256]
                                                # benchmark-sized exports (scripts/moe_corpus.py --large,
                                                # scripts/hf_moe_blocks.py --large): time and peak memory of
                                                # Switchyard, ONNX Runtime and OpenVINO on the same file
Each engine runs with the same threads and the same inputs, one after the other in this run; the large
cases run each engine in its own process so that its peak memory (ru_maxrss) is its own.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
sys.path.insert(0, os.path.join(ROOT, "build", "python"))


def time_calls(call, duration, warmup=0.2):
    """Median and p90 latency (us) of `call` over a fixed duration after a warm-up."""
    end = time.perf_counter() + warmup
    call()
    while time.perf_counter() < end:
        call()
    lat, start = [], time.perf_counter()
    while True:
        t0 = time.perf_counter()
        call()
        t1 = time.perf_counter()
        lat.append((t1 - t0) * 1e6)
        if t1 - start >= duration and len(lat) >= 3:
            break
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 90))


def session(engine, path, threads):
    """(callable feed -> outputs, compile notes, the first input's last dimension) for one engine."""
    if engine in ("switchyard", "switchyard-unfused"):
        import switchyard
        s = switchyard.InferenceSession(path, threads=threads, fuse_moe=engine == "switchyard")
        return lambda feed: s.run(None, feed), s.compile_notes, s.get_inputs()[0].shape[-1]
    if engine == "onnxruntime":
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        return lambda feed: s.run(None, feed), [], s.get_inputs()[0].shape[-1]
    if engine == "openvino":
        import openvino as ov
        core = ov.Core()
        compiled = core.compile_model(path, "CPU", {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"})
        req = compiled.create_infer_request()
        return lambda feed: req.infer(feed), [], compiled.inputs[0].get_partial_shape()[-1].get_length()
    raise ValueError(engine)


def isa():
    try:
        out = subprocess.run([os.path.join(ROOT, "build", "switchyard"), "bench", "--memory-bandwidth", "--duration", "0.01"],
                             capture_output=True, text=True, timeout=120).stdout
        for line in out.splitlines():
            if "isa" in line.lower():
                return line.strip()
    except Exception:
        pass
    flags = open("/proc/cpuinfo").read()
    return "avx512" if "avx512f" in flags else "avx2"


# ---------------------------------------------------------------------------------------------- corpus table
def corpus_table(args):
    import corpus_check
    entries = corpus_check.manifest()
    rows = []
    for e in entries:
        r = corpus_check.check(e)
        row = dict(name=e["name"], variant=e["variant"], export=e["export"], router=e["router"], dispatch=e["dispatch"],
                   body=e["body"], layers=r.layers, fused=r.fused_layers, expected=r.expected_layers,
                   reasons=r.reasons, error=r.error, err_torch=r.error_vs_torch, err_unfused=r.error_vs_unfused, ok=r.ok)
        if not r.error and args.duration > 0:
            path = os.path.join(corpus_check.CORPUS_DIR, e["name"] + ".onnx")
            given = dict(np.load(os.path.join(corpus_check.CORPUS_DIR, e["name"] + ".inputs.npz")))
            rng = np.random.default_rng(0)
            if "hidden" in given:  # a MoE layer: `tokens` random tokens
                feed = {"hidden": rng.standard_normal((1, args.tokens, given["hidden"].shape[-1])).astype(np.float32)}
            else:  # a whole language model: `tokens` random token ids
                feed = {"input_ids": rng.integers(0, 128, (1, args.tokens)).astype(np.int64)}
            for engine in ("switchyard", "onnxruntime"):
                run, _, _ = session(engine, path, args.threads)
                row[engine + "_us"] = time_calls(lambda: run(feed), args.duration)[0]
            row["speedup"] = row["onnxruntime_us"] / row["switchyard_us"]
        rows.append(row)
        print(f"{'ok ' if row['ok'] else 'BAD'} {e['name']:60s} fused {r.fused_layers}/{r.layers} "
              f"x{row.get('speedup', float('nan')):.1f}", file=sys.stderr)
    write_table(rows, args)


def write_table(rows, args):
    fusable = [r for r in rows if r["expected"] > 0]
    fused = [r for r in fusable if r["fused"] == r["layers"]]
    ok = [r for r in rows if r["ok"]]
    speed = [r["speedup"] for r in fused if "speedup" in r]
    lines = [
        "# MoE fusion on the export corpus",
        "",
        "Generated by `python3 bench/fusion.py` (`make fusion-table`) from `tests/corpus/` (written by",
        "`scripts/moe_corpus.py` and `scripts/hf_moe_blocks.py`; see docs/moe.md, Fusion). Each model is run fused and",
        "unfused in Switchyard on inputs of another batch and sequence length than the export example and compared with",
        "PyTorch's outputs; speed is Switchyard (fused) against ONNX Runtime on the same file, "
        f"{args.tokens} tokens, {args.threads} threads, median latency, one run ({isa()}).",
        "",
        f"- {len(rows)} models ({len({r['variant'] for r in rows})} variants and blocks); "
        f"{len(fused)} of the {len(fusable)} that should fuse fuse every MoE layer "
        f"({100.0 * len(fused) / max(1, len(fusable)):.0f}%); {len(rows) - len(fusable)} capacity-limited ones stay unfused with"
        " the reason; "
        f"{len(ok)} of {len(rows)} pass every check (fused as expected, max |diff| to PyTorch <= 1e-4, to the unfused run"
        " <= 1e-5 relative).",
    ]
    if speed:
        lines.append(f"- Fused vs ONNX Runtime: median {np.median(speed):.1f}x, min {min(speed):.1f}x, max {max(speed):.1f}x.")
    lines += ["", "| model | export | router | dispatch | body | fused | max diff to PyTorch | vs ONNX Runtime |",
              "| --- | --- | --- | --- | --- | --- | ---: | ---: |"]
    for r in rows:
        if r["error"]:
            status = "error: " + r["error"]
        elif r["fused"] == r["layers"]:
            status = f"{r['fused']}/{r['layers']}"
        else:
            status = f"{r['fused']}/{r['layers']}: " + "; ".join(x.split(": ", 1)[-1][:140] for x in r["reasons"][:1])
        sp = f"{r['speedup']:.1f}x" if "speedup" in r else ""
        lines.append(f"| {r['name']} | {r['export']} | {r['router']} | {r['dispatch']} | {r['body']} | {status} | "
                     f"{r['err_torch']:.1e} | {sp} |")
    with open(os.path.join(ROOT, "docs", "fusion.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "fusion.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print("\n".join(lines[:12]))


# ---------------------------------------------------------------------------------------------- large cases
def child(engine, path, tokens, threads, duration):
    """One engine in this process: compile, time, report peak and steady memory (MiB)."""
    run, notes, hidden = session(engine, path, threads)
    x = np.random.default_rng(1).standard_normal((1, tokens, hidden)).astype(np.float32)
    load_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The peak while inferring, apart from loading: reset the kernel's high-water mark (clear_refs 5).
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    t0 = time.perf_counter()
    run({"hidden": x})
    first = time.perf_counter() - t0
    p50, p90 = time_calls(lambda: run({"hidden": x}), duration, warmup=0.0)
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    mib = lambda key: int(status[key].split()[0]) / 1024
    print(json.dumps(dict(engine=engine, p50_ms=p50 / 1e3, p90_ms=p90 / 1e3, first_ms=first * 1e3,
                          load_peak_mib=load_peak, peak_mib=mib("VmHWM"), steady_mib=mib("VmRSS"),
                          fused=any(n.startswith("fused MoE layer") for n in notes))))


def large(args):
    results = []
    for name in sorted(os.listdir(args.large)):
        if not name.endswith(".onnx"):
            continue
        path = os.path.join(args.large, name)
        weights_mib = os.path.getsize(path) / 2**20
        case = dict(model=name, tokens=args.tokens, weights_mib=weights_mib, engines={})
        for engine in ("switchyard", "onnxruntime", "openvino"):
            proc = subprocess.run([sys.executable, __file__, "--child", engine, path, "--tokens", str(args.tokens),
                                   "--threads", str(args.threads), "--duration", str(args.duration)],
                                  capture_output=True, text=True, timeout=3600)
            if proc.returncode == 0 and proc.stdout.strip():
                case["engines"][engine] = json.loads(proc.stdout.strip().splitlines()[-1])
            else:
                case["engines"][engine] = {"error": (proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode])[-1][:200]}
            print(name, engine, case["engines"][engine], file=sys.stderr)
        sy = case["engines"]["switchyard"].get("p50_ms")
        for engine, r in case["engines"].items():
            if "p50_ms" in r and sy:
                r["switchyard_speedup"] = r["p50_ms"] / sy
        results.append(case)
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", f"fusion_large_{args.tokens}.json"), "w") as f:
        json.dump(dict(isa=isa(), threads=args.threads, cases=results), f, indent=1)
    print("| model | tokens | engine | p50 ms | Switchyard's speed-up | MiB: weights / peak inferring / peak loading |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for c in results:
        for engine, r in c["engines"].items():
            if "p50_ms" in r:
                print(f"| {c['model']} | {c['tokens']} | {engine} | {r['p50_ms']:.2f} | {r.get('switchyard_speedup', 0):.1f}x | "
                      f"{c['weights_mib']:.0f} / {r['peak_mib']:.0f} / {r['load_peak_mib']:.0f} |")
            else:
                print(f"| {c['model']} | {c['tokens']} | {engine} | {r['error']} | | |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--duration", type=float, default=0.3)
    ap.add_argument("--large", metavar="DIR")
    ap.add_argument("--child", nargs=2, metavar=("ENGINE", "MODEL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child[0], args.child[1], args.tokens, args.threads, args.duration)
    if args.large:
        return large(args)
    corpus_table(args)


if __name__ == "__main__":
    main()
