"""An ONNX Runtime-style session over Fashion-MNIST test images.

    PYTHONPATH=build/python python3 examples/python/ort_style_session.py models/seed_classifier.onnx
"""
import gzip
import sys

import numpy as np

import switchyard


def load(n):
    with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:n]
    with gzip.open("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    return images.astype(np.float32) / 255.0, labels


def main():
    session = switchyard.InferenceSession(sys.argv[1], threads=2)
    name = session.get_inputs()[0].name
    images, labels = load(1000)
    (logits,) = session.run(None, {name: images})
    print(f"session: {(logits.argmax(1) == labels).sum()} / {len(labels)} correct")


if __name__ == "__main__":
    main()
