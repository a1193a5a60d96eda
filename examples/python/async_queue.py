"""An OpenVINO-style AsyncInferQueue: preprocessing of the next image overlaps inference of earlier ones.

    PYTHONPATH=build/python python3 examples/python/async_queue.py models/seed_classifier.onnx
"""
import gzip
import sys

import numpy as np

import switchyard


def main():
    session = switchyard.InferenceSession(sys.argv[1], threads=2, hint="throughput")
    with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
        raw = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:1000]
    with gzip.open("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:1000]
    predictions = {}

    def done(request, index):
        predictions[index] = int(request.outputs[0].argmax())

    queue = switchyard.AsyncInferQueue(session, jobs=4)
    queue.set_callback(done)
    for i, image in enumerate(raw):
        x = (image.astype(np.float32) / 255.0)[None]  # preprocessing, while earlier images are inferred
        queue.start_async({"image": x}, i)
    queue.wait_all()
    correct = sum(predictions[i] == labels[i] for i in range(len(labels)))
    print(f"async queue: {correct} / {len(labels)} correct")


if __name__ == "__main__":
    main()
