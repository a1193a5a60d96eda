#!/usr/bin/env python3
"""Side-by-side benchmark: Switchyard vs ONNX Runtime vs OpenVINO, same inputs, same threads, one run.

    python3 bench/compare.py [--threads 2] [--duration 2] [--quick] [--out bench/results/compare.json]

Cases
- seed classifier (models/seed_classifier.onnx) at batch 1, 64, 1024 on Fashion-MNIST test images;
- MoE FFN layers as ONNX Runtime's com.microsoft.MoE (router MatMul + MoE node): E=8 k=2 H=1024 I=2816
  with ReLU and with SwiGLU, and E=64 k=8 H=2048 I=1024 (SwiGLU), at 1 token (decode) and 256 tokens
  (prefill). Inputs come from a pool of distinct token rows, so routing changes on every call and no
  engine is timed on experts that sit in cache. The read bandwidth of the same threads, measured in the
  same run, gives the decode roofline: GB/s = bytes of the experts touched per call / time.
- MoE layers also run Switchyard with BF16 experts (`--precision bf16`), FP16-stored experts at 1 token
  (`fp16`), INT8 experts with dynamically
  quantized activations (`int8`, VNNI) and, at 1 token, INT4 weights with INT8 activations (`int4`)
  and weight-only INT8 / INT4 experts (`int8-weights`, `int4-weights`, group 32); ratios are to ONNX
  Runtime's FP32, and the table adds each precision's speed-up over the same engine's FP32. ONNX
  Runtime's own quantized MoE runs too: the layer as com.microsoft.QMoE (`switchyard quantize
  --weights-only`) with INT8 experts (one scale per row) and INT4 experts (blocks of 32), in ONNX
  Runtime's kernels and in Switchyard (int8 / int4 on the same codes, activations quantized per row at
  run time: the precision the file gets by default). OpenVINO cannot
  load the MoE ops at all.
- seed classifier precisions of every engine: Switchyard bf16 / int8 (its MoE experts), OpenVINO's BF16
  inference hint, and the static INT8 QDQ model written by `switchyard quantize` (tools/quantize.py,
  256 calibration images) in ONNX Runtime and OpenVINO (their INT8 kernels) and in Switchyard (which
  drops the activation Q/DQ pairs, fuses the MoE and runs its small experts FP32 on the INT8 weights).
- expert scaling: E = 8, 32, 128, 256 at k=2, 256 tokens, H=512, I=512 (SwiGLU): efficiency =
  roofline time / measured time, roofline = max(FLOPs / FP32 peak, expert bytes touched / bandwidth),
  with the peak (a 1024^3 GEMM) and the bandwidth measured in the same run on the same threads, next to
  every MoE layer (they drift with other tenants of the machine); the rooflines use the highest values.

Switchyard runs through `build/switchyard bench` (C++ API, no Python in the loop); ONNX Runtime and
OpenVINO through their Python APIs with the same thread count. An engine that cannot load a model is
reported as unsupported. Writes JSON {"cases": [...]} and prints a table with ratios to ONNX Runtime.
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
from ms_moe_models import build as build_ms_moe  # noqa: E402
sys.path.insert(0, os.path.join(ROOT, "tools"))
from quantize import moe_to_qmoe  # noqa: E402

SWITCHYARD = os.path.join(ROOT, "build", "switchyard")
# The kernel ISA every Switchyard run (and the roofline probes) uses: --isa, exported as SWITCHYARD_ISA.
ISA_ENV = dict(os.environ)


def fashion_mnist_images():
    with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", "rb") as f:
        data = f.read()
    return (np.frombuffer(data, np.uint8, offset=16).reshape(-1, 1, 28, 28).astype(np.float32) / 255.0)


def time_loop(call, pool, batch, duration, warmup=0.5):
    """Warm up, then call for a fixed duration with a fresh slice of the pool every call."""
    rows = len(pool)
    i = 0

    def next_feed():
        nonlocal i
        off = (i * batch) % (rows - batch + 1)
        i += 1
        return pool[off:off + batch]

    end = time.perf_counter() + warmup
    while time.perf_counter() < end:
        call(next_feed())
    lat = []
    start = time.perf_counter()
    while True:
        x = next_feed()
        t0 = time.perf_counter()
        call(x)
        t1 = time.perf_counter()
        lat.append((t1 - t0) * 1e6)
        if t1 - start >= duration:
            break
    lat = np.array(lat)
    return {"p50_us": float(np.percentile(lat, 50)), "p90_us": float(np.percentile(lat, 90)),
            "p99_us": float(np.percentile(lat, 99)), "calls": len(lat),
            "throughput": float(len(lat) * batch / (t1 - start))}


def run_onnxruntime(path, input_name, pool, batch, threads, duration, precision="fp32"):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    if "basic" in precision:  # without the QDQ -> INT8-kernel fusions of the extended level
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return time_loop(lambda x: sess.run(None, {input_name: x}), pool, batch, duration)


def run_openvino(path, input_name, pool, batch, threads, duration, precision="fp32"):
    import openvino as ov
    core = ov.Core()
    model = core.read_model(path)
    compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                                                 "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"})
    request = compiled.create_infer_request()
    return time_loop(lambda x: request.infer({input_name: x}), pool, batch, duration)


def run_switchyard(path, input_name, pool, batch, threads, duration, precision="fp32", workdir=None):
    pool_file = os.path.join(workdir, "pool.npz")
    np.savez(pool_file, **{input_name: pool})
    out = os.path.join(workdir, "sy.json")
    # Quantized models (QDQ, QMoE) carry their precision: compiled at the default, the model's wins.
    flag = "fp32" if "qdq" in precision or "qmoe" in precision else precision.split()[0]
    subprocess.run([SWITCHYARD, "bench", path, "--inputs", pool_file, "--batch", str(batch), "--threads", str(threads),
                    "--duration", str(duration), "--json", out, "--precision", flag], check=True, capture_output=True,
                   text=True, env=ISA_ENV)
    with open(out) as f:
        r = json.load(f)
    return {k: r[k] for k in ("p50_us", "p90_us", "p99_us", "calls", "throughput")}


def machine_roofline(threads, workdir):
    """Read bandwidth (GB/s) and practical FP32 GEMM peak (GFLOP/s) of `threads` threads, measured now."""
    out = os.path.join(workdir, "roof.json")
    subprocess.run([SWITCHYARD, "bench", "--memory-bandwidth", "--threads", str(threads), "--json", out],
                   check=True, capture_output=True, text=True, env=ISA_ENV)
    with open(out) as f:
        r = json.load(f)
    return r["read_bandwidth_gbs"], r["fp32_gemm_peak_gflops"]


ENGINES = {"switchyard": run_switchyard, "onnxruntime": run_onnxruntime, "openvino": run_openvino}


def _isolated_child(fn, call_args, kwargs, queue):
    queue.put(fn(*call_args, **kwargs))


def isolated(fn, *call_args, **kwargs):
    """Runs fn in a fresh process: a crash of the engine (ONNX Runtime's fused QDQ kernels segfault when
    an expert gets no rows) becomes an error row instead of ending the benchmark."""
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_isolated_child, args=(fn, call_args, kwargs, queue))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"{fn.__name__.replace('run_', '')} crashed (exit code {proc.exitcode})")
    return queue.get()


# Bytes read per expert weight in each stored format (codes plus their FP16 / FP32 scales and minimums at
# the default group of 32 rows): the decode roofline of each precision.
BYTES_PER_WEIGHT = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "int8": 1.0, "int4": 0.5 + 4 / 32,
                    "int8-weights": 1 + 2 / 32, "int4-weights": 0.5 + 4 / 32, "int8 qmoe": 1.0, "int4 qmoe": 0.5 + 4 / 32}


def measure(case, path, input_name, pool, batch, args, workdir, extra=None, precisions=()):
    """Every engine in FP32, then each of `precisions`: a Switchyard --precision value, or
    (engine, precision label, model path) for another engine or model (e.g. the INT8 QDQ model)."""
    rows = []
    runs = [(engine, "fp32", path) for engine in ENGINES]
    runs += [p if isinstance(p, tuple) else ("switchyard", p, path) for p in precisions]
    for engine, precision, model_path in runs:
        fn = ENGINES[engine]
        row = {"case": case, "engine": engine, "precision": precision, "batch": batch, "threads": args.threads,
               "isa": args.isa_ran if engine == "switchyard" else "native"}
        try:
            kwargs = {"workdir": workdir} if engine == "switchyard" else {}
            call = (model_path, input_name, pool, batch, args.threads, args.duration)
            if engine != "switchyard" and precision != "fp32":
                row.update(isolated(fn, *call, precision=precision))
            else:
                row.update(fn(*call, precision=precision, **kwargs))
        except Exception as e:  # an engine that cannot run the model is reported, not fatal
            msg = getattr(e, "stderr", None) or str(e)
            row.update({"error": msg.strip().splitlines()[-1][:200] if msg.strip() else type(e).__name__})
        if extra and "p50_us" in row and (precision == "fp32" or engine == "switchyard"):
            row.update(extra(row))  # rooflines: FLOPs and the bytes of the experts touched, in this precision
            row["expert_bytes_touched"] *= BYTES_PER_WEIGHT.get(precision, 4.0) / 4.0
        rows.append(row)
        status = f"p50 {row['p50_us']:.1f} us, {row['throughput']:.0f}/s" if "p50_us" in row else "unsupported: " + row["error"]
        print(f"  {case:<34} {engine + ('' if precision == 'fp32' else ' ' + precision):<17} {status}", flush=True)
    return rows


def moe_case(args, workdir, name, E, k, H, I, activation, tokens_list, roof):
    # The machine's roofs drift (other tenants share the memory bus): measure them again next to every
    # layer; the report uses the highest values seen in the run (the strictest roofline).
    roof.append(machine_roofline(args.threads, workdir))
    model = build_ms_moe(E=E, k=k, H=H, I=I, activation=activation, normalize=1, biases=False,
                         fusion=1 if activation == "swiglu" else 0, seed=E)
    path = os.path.join(workdir, f"{name}.onnx")
    import onnx
    # ONNX Runtime's own quantized MoE (com.microsoft.QMoE, `switchyard quantize --weights-only`): INT8
    # per row and INT4 per block of 32, run by ONNX Runtime's kernels and by Switchyard (same codes).
    qmoe = {}
    for bits, block in ((8, 0), (4, 32)):
        quantized = onnx.ModelProto()
        quantized.CopyFrom(model)
        qmoe[bits] = os.path.join(workdir, f"{name}_int{bits}_qmoe.onnx")
        onnx.save(moe_to_qmoe(quantized, bits, block), qmoe[bits])
    onnx.save(model, path, save_as_external_data=True, location=f"{name}.weights")
    expert_bytes = (3 if activation == "swiglu" else 2) * H * I * 4
    rng = np.random.default_rng(0)
    rows = []
    for tokens in tokens_list:
        pool = rng.normal(0, 1, (max(64, 4 * tokens), H)).astype(np.float32)

        def extra(row, tokens=tokens):
            # Distinct experts touched per call: k for one token; for many tokens, the expected
            # number of experts hit by tokens*k uniform picks.
            touched = min(E, k) if tokens == 1 else E * (1 - (1 - k / E) ** tokens)
            return {"expert_bytes_touched": touched * expert_bytes,
                    "flops": 2 * tokens * k * (3 if activation == "swiglu" else 2) * H * I}
        # BF16 and INT8 everywhere; the weight-only formats where they pay: decode, bound by the
        # weights' bytes.
        precisions = ("bf16", "int8") if tokens > 1 else ("fp16", "bf16", "int8", "int4", "int8-weights", "int4-weights")
        precisions += tuple((engine, f"int{bits} qmoe", qmoe[bits]) for bits in (8, 4)
                            for engine in ("onnxruntime", "switchyard"))
        rows += measure(f"{name} tokens={tokens}", path, "x", pool, tokens, args, workdir, extra, precisions)
    for f in [os.path.join(workdir, f"{name}.weights"), *qmoe.values()]:
        os.remove(f)
    return rows


def add_roofline(cases, bandwidth, peak):
    """GB/s of expert weights, GFLOP/s and roofline efficiency (roofline time / p50) of the MoE rows."""
    for c in cases:
        if "expert_bytes_touched" not in c:
            continue
        seconds = c["p50_us"] * 1e-6
        roofline = max(c["flops"] / (peak * 1e9), c["expert_bytes_touched"] / (bandwidth * 1e9))
        c.update({"expert_gbs": c["expert_bytes_touched"] / seconds / 1e9, "bandwidth_gbs": bandwidth,
                  "bandwidth_share": c["expert_bytes_touched"] / seconds / 1e9 / bandwidth,
                  "gflops": c["flops"] / seconds / 1e9, "peak_share": c["flops"] / seconds / 1e9 / peak,
                  "roofline_efficiency": roofline / seconds})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--quick", action="store_true", help="seed classifier and the E=8 ReLU layer only")
    parser.add_argument("--out", help="JSON results (default bench/results/compare.json, compare_isa_ISA.json with --isa)")
    parser.add_argument("--isa", choices=("native", "avx512", "avx2", "portable"), default="native",
                        help="cap Switchyard's CPU kernels (SWITCHYARD_ISA); ONNX Runtime and OpenVINO run natively")
    args = parser.parse_args()
    ISA_ENV["SWITCHYARD_ISA"] = args.isa
    if args.out is None:
        name = "compare.json" if args.isa == "native" else f"compare_isa_{args.isa}.json"
        args.out = os.path.join(ROOT, "bench", "results", name)
    isa_ran = subprocess.run([SWITCHYARD, "inspect", os.path.join(ROOT, "models", "seed_classifier.onnx"), "--json"],
                             check=True, capture_output=True, text=True, env=ISA_ENV)
    args.isa_ran = json.loads(isa_ran.stdout)["kernel_isa"]
    import onnxruntime
    import openvino
    cases = []
    with tempfile.TemporaryDirectory() as workdir:
        roof = [machine_roofline(args.threads, workdir)]
        print(f"{args.threads} threads, Switchyard kernels {args.isa_ran}: read bandwidth {roof[0][0]:.1f} GB/s, FP32 GEMM "
              f"peak {roof[0][1]:.0f} GFLOP/s; onnxruntime {onnxruntime.__version__}, openvino {openvino.__version__}",
              flush=True)
        images = fashion_mnist_images()
        seed = os.path.join(ROOT, "models", "seed_classifier.onnx")
        # Every engine's lower precisions on the seed: Switchyard's MoE-expert precisions, OpenVINO's
        # BF16 hint, and the static INT8 QDQ model of `switchyard quantize` in all three engines.
        qdq = os.path.join(workdir, "seed_int8_qdq.onnx")
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "quantize.py"), seed, "-o", qdq, "--samples", "256"],
                       check=True, capture_output=True)
        seed_precisions = ("bf16", "int8", ("openvino", "bf16", seed), ("onnxruntime", "int8 qdq", qdq),
                           ("onnxruntime", "int8 qdq, basic opt", qdq), ("openvino", "int8 qdq", qdq),
                           ("switchyard", "int8 qdq", qdq))
        for batch in (1, 64, 1024):
            cases += measure("seed classifier", seed, "image", images, batch, args, workdir, precisions=seed_precisions)
        cases += moe_case(args, workdir, "moe E8 k2 H1024 I2816 relu", 8, 2, 1024, 2816, "relu", (1, 256), roof)
        if not args.quick:
            cases += moe_case(args, workdir, "moe E8 k2 H1024 I2816 swiglu", 8, 2, 1024, 2816, "swiglu", (1, 256), roof)
            cases += moe_case(args, workdir, "moe E64 k8 H2048 I1024 swiglu", 64, 8, 2048, 1024, "swiglu", (1, 256), roof)
            for E in (8, 32, 128, 256):
                cases += moe_case(args, workdir, f"scaling E{E} k2 H512 I512 swiglu", E, 2, 512, 512, "swiglu", (256,), roof)
    bandwidth, peak = max(r[0] for r in roof), max(r[1] for r in roof)
    add_roofline(cases, bandwidth, peak)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"threads": args.threads, "switchyard_isa": args.isa_ran, "read_bandwidth_gbs": bandwidth, "fp32_gemm_peak_gflops": peak,
                   "roof_measurements": [{"read_bandwidth_gbs": b, "fp32_gemm_peak_gflops": f} for b, f in roof],
                   "cases": cases}, f, indent=1)
    print_table(cases)
    print(f"read bandwidth {', '.join(f'{b:.1f}' for b, _ in roof)} GB/s, FP32 peak {', '.join(f'{f:.0f}' for _, f in roof)} "
          f"GFLOP/s over the run: rooflines use the highest, {bandwidth:.1f} GB/s and {peak:.0f} GFLOP/s")
    print(f"wrote {args.out}")


def print_table(cases):
    ort = {(c["case"], c["batch"]): c for c in cases
           if c["engine"] == "onnxruntime" and c.get("precision", "fp32") == "fp32" and "p50_us" in c}
    fp32 = {(c["case"], c["batch"], c["engine"]): c for c in cases if c.get("precision", "fp32") == "fp32" and "p50_us" in c}
    print(f"\n{'case':<36}{'batch':>6} {'engine':<17}{'isa':<9}{'p50 us':>10}{'throughput/s':>14}{'vs ORT':>8}  notes")
    for c in cases:
        label = c["engine"] + ("" if c.get("precision", "fp32") == "fp32" else " " + c["precision"])
        if "p50_us" not in c:
            print(f"{c['case']:<36}{c['batch']:>6} {label:<17}{c.get('isa', ''):<9}{'-':>10}{'-':>14}{'-':>8}  {c['error'][:60]}")
            continue
        ref = ort.get((c["case"], c["batch"]))
        ratio = f"{c['throughput'] / ref['throughput']:.2f}x" if ref else "-"
        notes = []
        own32 = fp32.get((c["case"], c["batch"], c["engine"]))
        if c.get("precision", "fp32") != "fp32" and own32:
            notes.append(f"{c['throughput'] / own32['throughput']:.2f}x {c['engine']} fp32")
        if "expert_gbs" in c and (c.get("precision", "fp32") == "fp32" or c["batch"] == 1):
            notes.append(f"{c['expert_gbs']:.1f} GB/s experts ({100 * c['bandwidth_share']:.0f}% of read bw)")
        if "gflops" in c and c["batch"] > 1:
            notes.append(f"{c['gflops']:.0f} GFLOP/s ({100 * c['peak_share']:.0f}% of FP32 peak)")
        if "roofline_efficiency" in c and c.get("precision", "fp32") == "fp32":
            notes.append(f"roofline eff {c['roofline_efficiency']:.2f}")
        print(f"{c['case']:<36}{c['batch']:>6} {label:<17}{c.get('isa', ''):<9}{c['p50_us']:>10.1f}{c['throughput']:>14.0f}{ratio:>8}  {', '.join(notes)}")


if __name__ == "__main__":
    main()
