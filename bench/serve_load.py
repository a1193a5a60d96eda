#!/usr/bin/env python3
"""`switchyard serve` under load, next to the same model in process: bench/results/serve.json.

  python3 bench/serve_load.py [--duration 3] [--clients 1,8,64]

For each model and for dynamic batching on and off, the script starts a server on 127.0.0.1 (ports
picked by the OS), then measures batch-1 requests of distinct inputs from 1, 8 and 64 concurrent
closed-loop clients:
- gRPC: `switchyard bench --server grpc://...` (C++ client, one connection per client, busy-polling
  completion queue so that the client's own wake-ups stay out of the latency);
- HTTP: `switchyard bench --server http://...` (cpp-httplib client, binary tensor data as tritonclient
  sends it) and, when Debian's `wrk` is installed, wrk with the same request body (an epoll client:
  the lower bound a client can reach);
- in process: `switchyard bench MODEL --batch 1` with the server's thread count, on 4096 distinct rows.
Server overhead = server p50 at 1 client - in-process p50. Client and server share the machine's cores.

Models: the seed classifier (compute ~1 us per image: the protocol dominates), and the SPEC's MoE FFN
layer (com.microsoft.MoE, E=8, k=2, H=1024, I=2816: ~2 ms per token, memory-bound at batch 1), where
batching decides the throughput.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import onnx

ROOT = Path(__file__).resolve().parents[1]
BIN = os.environ.get("SWITCHYARD_BIN", str(ROOT / "build" / "switchyard"))
sys.path.insert(0, str(ROOT / "tests" / "python"))

BATCHING_ON = "dynamic_batching { max_queue_delay_microseconds: 0 }\n"


def config(max_batch, threads, batching):
    text = f'max_batch_size: {max_batch}\nparameters {{ key: "threads" value {{ string_value: "{threads}" }} }}\n'
    return text + (BATCHING_ON if batching else "")


class Server:
    def __init__(self, repo):
        self.proc = subprocess.Popen([BIN, "serve", "--model-repository", str(repo), "--address", "127.0.0.1",
                                      "--http-port", "0", "--grpc-port", "0", "--metrics-port", "0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("server exited: " + self.proc.stderr.read())
            self.lines.append(line.strip())
            if "ready:" in line:
                w = line.split()
                self.http, self.grpc, self.metrics = (int(w[w.index(k) + 1]) for k in ("http", "grpc", "metrics"))
                return

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0


def run_json(args):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([BIN, *map(str, args), "--json", out.name], check=True, capture_output=True, timeout=900)
        return json.load(open(out.name))


def client_bench(url, model, clients, duration):
    result = run_json(["bench", "--server", url, "--model-name", model, "--clients", ",".join(map(str, clients)),
                       "--duration", duration, "--warmup", 0.5])
    return {r["clients"]: r for r in result["results"]}


def wrk_bench(port, model, body_path, header_bytes, connections, duration):
    """wrk's latency percentiles and requests/s, or None without wrk."""
    if not shutil.which("wrk"):
        return None
    lua = Path(body_path).with_suffix(".lua")
    lua.write_text(f'local f = io.open("{body_path}", "rb"); local body = f:read("*all"); f:close()\n'
                   f'wrk.method = "POST"; wrk.body = body\n'
                   f'wrk.headers["Inference-Header-Content-Length"] = "{header_bytes}"\n'
                   f'wrk.headers["Content-Type"] = "application/octet-stream"\n')
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "-s", str(lua), "--latency",
                          f"http://127.0.0.1:{port}/v2/models/{model}/infer"],
                         check=True, capture_output=True, text=True, timeout=300).stdout

    def us(text):
        value = float(text[:-2]) if text.endswith("us") else None
        if text.endswith("ms"):
            value = float(text[:-2]) * 1000
        elif text.endswith("s") and value is None:
            value = float(text[:-1]) * 1e6
        return value
    result = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "90%", "99%"):
            result[f"p{parts[0][:-1]}_us"] = us(parts[1])
        if line.startswith("Requests/sec:"):
            result["requests_per_second"] = float(parts[1])
        if "Non-2xx" in line:
            result["errors"] = int(parts[-1])
    return result


def request_body(workdir, input_name, shape):
    import numpy as np
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    header = json.dumps({"inputs": [{"name": input_name, "datatype": "FP32", "shape": list(shape),
                                     "parameters": {"binary_data_size": x.nbytes}}],
                         "parameters": {"binary_data_output": True}})
    path = Path(workdir) / f"{input_name}_body.bin"
    path.write_bytes(header.encode() + x.tobytes())
    return path, len(header)


def bench_model(name, onnx_path, input_name, row_shape, threads, max_batch, clients, duration, workdir):
    # In process on 4096 distinct rows, as the load clients send (the same row again would keep its
    # experts' weights in cache and flatter the in-process time of a memory-bound MoE layer).
    import numpy as np
    pool = Path(workdir) / f"{name}_pool.npz"
    np.savez(pool, **{input_name: np.random.default_rng(1).standard_normal((4096, *row_shape), dtype=np.float32)})
    inproc = run_json(["bench", onnx_path, "--inputs", pool, "--batch", 1, "--threads", threads, "--duration", duration])
    entry = {"model": name, "threads": threads, "in_process_p50_us": inproc["p50_us"],
             "in_process_requests_per_second": inproc["throughput"], "batching": {}}
    body, header_bytes = request_body(workdir, input_name, [1, *row_shape])
    for batching in (True, False):
        repo = Path(workdir) / f"{name}_{'on' if batching else 'off'}"
        (repo / name / "1").mkdir(parents=True)
        os.symlink(os.path.abspath(onnx_path), repo / name / "1" / "model.onnx")
        (repo / name / "config.pbtxt").write_text(config(max_batch, threads, batching))
        server = Server(repo)
        try:
            grpc = client_bench(f"grpc://127.0.0.1:{server.grpc}", name, clients, duration)
            http = client_bench(f"http://127.0.0.1:{server.http}", name, clients, duration)
            wrk = {c: wrk_bench(server.http, name, body, header_bytes, c, duration) for c in (1, max(clients))}
        finally:
            server.stop()
        entry["batching"]["on" if batching else "off"] = {"grpc": grpc, "http": http, "http_wrk": wrk}
    return entry


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--clients", default="1,8,64")
    ap.add_argument("--skip-moe", action="store_true", help="only the seed classifier")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run everything N times (batching on and off interleaved) and keep each cell's best run")
    ap.add_argument("--isa", default="native", choices=["native", "avx512", "avx2", "portable"],
                    help="cap Switchyard's kernels (SWITCHYARD_ISA) in the server and the in-process runs")
    ap.add_argument("--out", default=None, help="default: bench/results/serve.json (serve_isa_<isa>.json when capped)")
    args = ap.parse_args()
    if args.isa != "native":
        os.environ["SWITCHYARD_ISA"] = args.isa
    if args.out is None:
        name = "serve.json" if args.isa == "native" else f"serve_isa_{args.isa}.json"
        args.out = str(ROOT / "bench" / "results" / name)
    clients = [int(c) for c in args.clients.split(",")]
    results = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu_model(), "cores": os.cpu_count(), "isa": args.isa,
               "cases": []}
    with tempfile.TemporaryDirectory() as workdir:
        models = [("seed_classifier", str(ROOT / "models" / "seed_classifier.onnx"), "image", [1, 28, 28], 1, 256)]
        if not args.skip_moe:
            from ms_moe_models import build
            moe_path = Path(workdir) / "moe_layer.onnx"
            onnx.save(build(8, 2, 1024, 2816, "relu"), moe_path)
            models.append(("moe_layer", str(moe_path), "x", [1024], 2, 64))
        for model in models:
            runs = []
            for r in range(args.repeat):
                run_dir = Path(workdir) / f"run{r}"
                run_dir.mkdir(exist_ok=True)
                runs.append(bench_model(*model, clients, args.duration, run_dir))
            results["cases"].append(best_of(runs))
    print_table(results)  # also adds each case's summary
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten: {args.out}")


def best_of(runs):
    """Each cell's best run (highest requests/s; lowest in-process p50): other tenants of a VM only slow runs down."""
    best = runs[0]
    for run in runs[1:]:
        best["in_process_p50_us"] = min(best["in_process_p50_us"], run["in_process_p50_us"])
        best["in_process_requests_per_second"] = max(best["in_process_requests_per_second"],
                                                     run["in_process_requests_per_second"])
        for mode, protocols in run["batching"].items():
            for proto, cells in protocols.items():
                for c, cell in (cells or {}).items():
                    mine = best["batching"][mode][proto]
                    if cell and (not mine.get(c) or cell["requests_per_second"] > mine[c]["requests_per_second"]):
                        mine[c] = cell
    best["runs"] = len(runs)
    return best


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def print_table(results):
    for case in results["cases"]:
        print(f"\n{case['model']} ({case['threads']} thread(s)): in process, batch 1: p50 "
              f"{case['in_process_p50_us']:.1f} us, {case['in_process_requests_per_second']:.0f} requests/s")
        print(f"{'protocol':<10}{'batching':<10}{'clients':>8}{'req/s':>10}{'p50 us':>10}{'p99 us':>10}{'errors':>8}")
        for mode in ("on", "off"):
            b = case["batching"][mode]
            for proto in ("grpc", "http"):
                for c, r in sorted(b[proto].items(), key=lambda kv: int(kv[0])):
                    print(f"{proto:<10}{mode:<10}{c:>8}{r['requests_per_second']:>10.0f}{r['p50_us']:>10.1f}"
                          f"{r['p99_us']:>10.1f}{r['errors']:>8}")
            for c, r in (b["http_wrk"] or {}).items():
                if r:
                    print(f"{'http/wrk':<10}{mode:<10}{c:>8}{r['requests_per_second']:>10.0f}{r.get('p50_us', 0):>10.1f}"
                          f"{r.get('p99_us', 0):>10.1f}{r.get('errors', 0):>8}")
        on, off = case["batching"]["on"], case["batching"]["off"]
        top = max(int(c) for c in on["grpc"])
        ratio = on["grpc"][top]["requests_per_second"] / off["grpc"][top]["requests_per_second"]
        over_g = on["grpc"][1]["p50_us"] - case["in_process_p50_us"] if 1 in on["grpc"] else float("nan")
        over_h = on["http"][1]["p50_us"] - case["in_process_p50_us"] if 1 in on["http"] else float("nan")
        wrk1 = (on["http_wrk"] or {}).get(1)
        over_w = wrk1["p50_us"] - case["in_process_p50_us"] if wrk1 else float("nan")
        case["summary"] = {"batching_gain_grpc": ratio, "grpc_overhead_us": over_g, "http_overhead_us": over_h,
                           "http_wrk_overhead_us": over_w, "grpc_p99_us_at_max_clients": on["grpc"][top]["p99_us"]}
        print(f"dynamic batching at {top} gRPC clients: {ratio:.2f}x the requests/s of batching off; p99 "
              f"{on['grpc'][top]['p99_us']:.0f} us")
        print(f"server overhead at 1 client (p50 - in-process p50): gRPC {over_g:.1f} us, HTTP {over_h:.1f} us "
              f"(httplib client), {over_w:.1f} us (wrk)")


if __name__ == "__main__":
    main()
