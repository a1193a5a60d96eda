#!/usr/bin/env python3
"""Per-call overhead of the Python API on the seed classifier at batch 1: Switchyard's
InferenceSession.run vs ONNX Runtime's, side by side, same input, same threads.

    PYTHONPATH=build/python python3 bench/python_overhead.py [--threads 2] [--seconds 2]
"""
import argparse
import os
import time

import numpy as np
import onnxruntime as ort

import switchyard

MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models", "seed_classifier.onnx")


def per_call_us(fn, seconds):
    for _ in range(1000):
        fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            fn()
        n += 100
    return (time.perf_counter() - start) / n * 1e6


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=2.0)
    a = p.parse_args()
    x = np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32)
    sy = switchyard.InferenceSession(MODEL, threads=a.threads)
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = a.threads, 1
    ox = ort.InferenceSession(MODEL, so, providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sy.run(None, {"image": x})[0], ox.run(None, {"image": x})[0], rtol=1e-4, atol=1e-5)
    s = per_call_us(lambda: sy.run(None, {"image": x}), a.seconds)
    o = per_call_us(lambda: ox.run(None, {"image": x}), a.seconds)
    print(f"seed classifier, batch 1, {a.threads} threads, Python run() per call: switchyard {s:.1f} us, "
          f"onnxruntime {o:.1f} us (onnxruntime / switchyard = {o / s:.1f}x)")


if __name__ == "__main__":
    main()
