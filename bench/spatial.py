#!/usr/bin/env python3
"""Per-block image MoE (issue 14), side by side in one run, same inputs, same threads: the x4 upsampler
(models/spatial_moe, top-1 of 8 experts per 8x8 block) on Fashion-MNIST mosaics of 64x64 and 256x256.

  switchyard sparse          the dense export, fused into ai.switchyard::SpatialMoE
  switchyard native          the ai.switchyard::SpatialMoE export
  switchyard dense export    the dense export run op by op (fusion off)
  switchyard all experts     the same SpatialMoE kernel with every expert on every block (weights all 1):
                             the dense work on the same kernels, the fair base of the ideal k/E saving
  onnxruntime dense          the dense export
  openvino dense             the dense export
  openvino per-block queue   the workaround the asker was given: the router once, then one AsyncInferQueue
                             request per block on that block's expert model (block + 3-pixel halo in,
                             32x32 out), results pasted into the output

Every engine runs in a fresh process, --repeats times interleaved with the others; the repeat with the
best p50 is reported. Reports images/s, p50/p90/p99 and the ratios; writes bench/results/spatial.json.
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
MODELS = os.path.join(ROOT, "models", "spatial_moe")
SWITCHYARD = os.environ.get("SWITCHYARD_BIN", os.path.join(ROOT, "build", "switchyard"))
BLOCK, SCALE, EXPERTS, HALO = 8, 4, 8, 3


def mosaic_images(side, count, seed):
    """[count, 1, side, side] low-resolution inputs: 4x4 averages of Fashion-MNIST mosaics (as in training)."""
    with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", "rb") as f:
        imgs = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    padded = np.pad(imgs, ((0, 0), (2, 2), (2, 2))).astype(np.float32) / 255.0
    grid = side * SCALE // 32
    rng = np.random.default_rng(seed)
    tiles = padded[rng.integers(0, len(padded), size=(count, grid, grid))]
    hr = tiles.transpose(0, 1, 3, 2, 4).reshape(count, grid * 32, grid * 32)
    return hr.reshape(count, side, SCALE, side, SCALE).mean((2, 4))[:, None].astype(np.float32)


def stats(lat, images, elapsed):
    lat = np.array(lat)
    return {"p50_ms": float(np.percentile(lat, 50)), "p90_ms": float(np.percentile(lat, 90)),
            "p99_ms": float(np.percentile(lat, 99)), "calls": len(lat), "images_per_s": images / elapsed}


def time_loop(call, pool, duration, warmup):
    i = 0
    end = time.perf_counter() + warmup
    while time.perf_counter() < end or i == 0:
        call(pool[i % len(pool)])
        i += 1
    lat, start = [], time.perf_counter()
    while True:
        x = pool[i % len(pool)]
        i += 1
        t0 = time.perf_counter()
        call(x)
        t1 = time.perf_counter()
        lat.append((t1 - t0) * 1e3)
        if t1 - start >= duration:
            return stats(lat, len(lat), t1 - start)


def run_switchyard(path, feeds, threads, duration, workdir, extra=(), isa="native"):
    pool = os.path.join(workdir, "pool.npz")
    np.savez(pool, **feeds)
    out = os.path.join(workdir, "sy.json")
    subprocess.run([SWITCHYARD, "bench", path, "--inputs", pool, "--batch", "1", "--threads", str(threads), "--duration",
                    str(duration), "--warmup", "1", "--json", out, "--isa", isa, *extra], check=True, capture_output=True,
                   text=True)
    with open(out) as f:
        r = json.load(f)
    return {"p50_ms": r["p50_us"] / 1e3, "p90_ms": r["p90_us"] / 1e3, "p99_ms": r["p99_us"] / 1e3, "calls": r["calls"],
            "images_per_s": r["throughput"]}


def run_onnxruntime(path, pool, threads, duration):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return time_loop(lambda x: sess.run(None, {"image": x[None]}), pool, duration, 1.0)


def openvino_core():
    import openvino as ov
    return ov, ov.Core()


def run_openvino(path, pool, threads, duration):
    ov, core = openvino_core()
    compiled = core.compile_model(core.read_model(path), "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                                 "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    return time_loop(lambda x: request.infer({0: x[None]}), pool, duration, 1.0)


class PerBlockQueue:
    """The workaround: router once per image, then one AsyncInferQueue request per block on its expert."""

    def __init__(self, threads, jobs=4):
        ov, core = openvino_core()
        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": threads}
        per_block = os.path.join(MODELS, "per_block")
        self.router = core.compile_model(core.read_model(os.path.join(per_block, "router.onnx")), "CPU",
                                         {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
        self.router_request = self.router.create_infer_request()
        self.queues = []
        for e in range(EXPERTS):
            compiled = core.compile_model(core.read_model(os.path.join(per_block, f"expert_{e}.onnx")), "CPU", config)
            queue = ov.AsyncInferQueue(compiled, jobs)
            queue.set_callback(self._paste)
            self.queues.append(queue)
        self.out = None

    def _paste(self, request, where):
        by, bx = where
        side = BLOCK * SCALE
        self.out[by * side:(by + 1) * side, bx * side:(bx + 1) * side] = request.get_output_tensor(0).data[0, 0]

    def __call__(self, image):
        h, w = image.shape[1:]
        ids = self.router_request.infer({0: image[None]})[0][0].argmax(0)  # [Hb, Wb]
        padded = np.pad(image[0], HALO)
        self.out = np.empty((h * SCALE, w * SCALE), np.float32)
        size = BLOCK + 2 * HALO
        for by in range(h // BLOCK):
            for bx in range(w // BLOCK):
                patch = padded[by * BLOCK:by * BLOCK + size, bx * BLOCK:bx * BLOCK + size][None, None]
                self.queues[ids[by, bx]].start_async({0: np.ascontiguousarray(patch)}, (by, bx))
        for q in self.queues:
            q.wait_all()
        return self.out


def run_per_block(pool, threads, duration):
    runner = PerBlockQueue(threads)
    return time_loop(runner, pool, duration, 1.0)


def all_experts_model(workdir):
    """The native export's SpatialMoE node with its gate as a graph input (k = 0): weights all 1 run every
    expert on every block; the router's one-hot runs the sparse top-1 on the same kernel."""
    import onnx
    from onnx import TensorProto, helper
    m = onnx.load(os.path.join(MODELS, "upsampler_x4_native.onnx"))
    node = next(n for n in m.graph.node if n.op_type == "SpatialMoE")
    weights = {i.name: i for i in m.graph.initializer}
    used = [weights[name] for name in node.input[2:] if name in weights]
    for a in node.attribute:
        if a.name == "k":
            a.i = 0
    node.input[0], node.input[1] = "image", "gate"
    g = helper.make_graph([node], "all_experts",
                          [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, None, None]),
                           helper.make_tensor_value_info("gate", TensorProto.FLOAT, [1, EXPERTS, None, None])],
                          [helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, None)], used)
    path = os.path.join(workdir, "spatial_k0.onnx")
    onnx.save(helper.make_model(g, opset_imports=list(m.opset_import)), path)
    return path


def route(pool):
    import onnxruntime as ort
    sess = ort.InferenceSession(os.path.join(MODELS, "per_block", "router.onnx"), providers=["CPUExecutionProvider"])
    logits = np.concatenate([sess.run(None, {"image": x[None]})[0] for x in pool])
    return np.eye(EXPERTS, dtype=np.float32)[logits.argmax(1)].transpose(0, 3, 1, 2)


def _child(fn, args, queue):
    queue.put(fn(*args))


def isolated(fn, *args):
    """fn(*args) in a fresh process: no engine's threads (OpenVINO's TBB, ONNX Runtime's pool) linger into
    the next engine's measurement."""
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def best_of(repeats, runs):
    """Each engine measured `repeats` times, engines interleaved, in fresh processes; per engine the repeat
    with the lowest p50 is kept (this VM's neighbours move single runs by +-20%)."""
    best = {}
    for _ in range(repeats):
        for name, (fn, args) in runs.items():
            r = isolated(fn, *args)
            if name not in best or r["p50_ms"] < best[name]["p50_ms"]:
                best[name] = r
    return {name: best[name] for name in runs}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--sizes", default="64,256")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per engine; the best p50 is kept")
    parser.add_argument("--isa", default="native", help="caps Switchyard's kernels (portable|avx2|avx512|native)")
    parser.add_argument("--out", default=None, help="default bench/results/spatial.json (spatial_isa_<isa>.json capped)")
    args = parser.parse_args()
    dense = os.path.join(MODELS, "upsampler_x4_dense.onnx")
    native = os.path.join(MODELS, "upsampler_x4_native.onnx")
    if args.out is None:
        name = "spatial.json" if args.isa == "native" else f"spatial_isa_{args.isa}.json"
        args.out = os.path.join(ROOT, "bench", "results", name)
    results = {"isa": args.isa, "threads": args.threads, "repeats": args.repeats, "duration_s": args.duration, "cases": []}
    with tempfile.TemporaryDirectory() as workdir:
        k0 = all_experts_model(workdir)
        for side in [int(s) for s in args.sizes.split(",")]:
            pool = mosaic_images(side, 4, seed=side)
            gate = route(pool)
            d = args.duration
            rows = best_of(args.repeats, {
                "switchyard sparse": (run_switchyard, (dense, {"image": pool}, args.threads, d, workdir, (), args.isa)),
                "switchyard native": (run_switchyard, (native, {"image": pool}, args.threads, d, workdir, (), args.isa)),
                "switchyard sparse, same kernel as all-experts":
                    (run_switchyard, (k0, {"image": pool, "gate": gate}, args.threads, d, workdir, (), args.isa)),
                "switchyard all experts":
                    (run_switchyard, (k0, {"image": pool, "gate": np.ones_like(gate)}, args.threads, d, workdir, (), args.isa)),
                "switchyard dense export": (run_switchyard, (dense, {"image": pool}, args.threads, d, workdir, ("--no-fuse",), args.isa)),
                "onnxruntime dense": (run_onnxruntime, (dense, pool, args.threads, d)),
                "openvino dense": (run_openvino, (dense, pool, args.threads, d)),
                "openvino per-block queue": (run_per_block, (pool, args.threads, d)),
            })
            sparse = rows["switchyard sparse"]["p50_ms"]
            case = {"image": f"{side}x{side} -> {side * SCALE}x{side * SCALE}", "blocks": (side // BLOCK) ** 2,
                    "rows": rows,
                    "sparse_vs_onnxruntime_dense": rows["onnxruntime dense"]["p50_ms"] / sparse,
                    "sparse_vs_openvino_dense": rows["openvino dense"]["p50_ms"] / sparse,
                    "sparse_vs_per_block_queue": rows["openvino per-block queue"]["p50_ms"] / sparse,
                    # ideal = dense time x k/E; share of it reached = ideal / sparse time
                    "ideal_share_vs_all_experts": rows["switchyard all experts"]["p50_ms"] / EXPERTS /
                    rows["switchyard sparse, same kernel as all-experts"]["p50_ms"],
                    "ideal_share_vs_dense_export": rows["switchyard dense export"]["p50_ms"] / EXPERTS / sparse}
            results["cases"].append(case)
            print(f"\n== {case['image']} ({case['blocks']} blocks of 8x8, top-1 of {EXPERTS} experts, "
                  f"{args.threads} threads, Switchyard kernels: {args.isa})")
            print(f"{'engine':48s} {'p50 ms':>9s} {'p99 ms':>9s} {'images/s':>9s}")
            for name, r in rows.items():
                print(f"{name:48s} {r['p50_ms']:9.2f} {r['p99_ms']:9.2f} {r['images_per_s']:9.1f}")
            print(f"sparse vs ONNX Runtime dense {case['sparse_vs_onnxruntime_dense']:.1f}x, vs OpenVINO dense "
                  f"{case['sparse_vs_openvino_dense']:.1f}x, vs per-block AsyncInferQueue {case['sparse_vs_per_block_queue']:.1f}x")
            print(f"share of the ideal k/E saving: {case['ideal_share_vs_all_experts']:.2f} (same kernel, all experts), "
                  f"{case['ideal_share_vs_dense_export']:.2f} (Switchyard's dense export run op by op)")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
