"""Query `switchyard serve` with tritonclient, over HTTP and gRPC.

  build/switchyard serve --model-repository models/repository &
  python3 examples/python/kserve_client.py [--http localhost:8000] [--grpc localhost:8001]
"""
import argparse

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient


def classify(module, url, images):
    client = module.InferenceServerClient(url)
    assert client.is_model_ready("seed_classifier")
    image = module.InferInput("image", list(images.shape), "FP32")
    image.set_data_from_numpy(images)
    result = client.infer("seed_classifier", [image], outputs=[module.InferRequestedOutput("logits")])
    return result.as_numpy("logits")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", default="localhost:8000")
    ap.add_argument("--grpc", default="localhost:8001")
    args = ap.parse_args()
    images = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    over_http = classify(httpclient, args.http, images)
    over_grpc = classify(grpcclient, args.grpc, images)
    print("classes over HTTP:", over_http.argmax(axis=1).tolist())
    print("classes over gRPC:", over_grpc.argmax(axis=1).tolist())
    assert np.array_equal(over_http, over_grpc)


if __name__ == "__main__":
    main()
