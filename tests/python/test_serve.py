"""`switchyard serve` through clients nobody here wrote: tritonclient (HTTP and gRPC), curl-like raw HTTP
(http.client) and a raw gRPC channel. Every server runs on 127.0.0.1 with ports the OS picks (0), read
from its "ready" line.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

grpcclient = pytest.importorskip("tritonclient.grpc")
httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "models" / "seed_classifier.onnx"
SANITIZED = "asan" in os.environ.get("SWITCHYARD_BIN", "")


class Server:
    def __init__(self, binary, repository, *extra):
        self.proc = subprocess.Popen([binary, "serve", "--model-repository", str(repository), "--address", "127.0.0.1",
                                      "--http-port", "0", "--grpc-port", "0", "--metrics-port", "0", *map(str, extra)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.log = []
        deadline = time.time() + 120
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("server exited: " + self.proc.stderr.read())
            self.log.append(line)
            if "ready:" in line:
                words = line.split()
                self.http = int(words[words.index("http") + 1])
                self.grpc = int(words[words.index("grpc") + 1])
                self.metrics = int(words[words.index("metrics") + 1])
                break
        else:
            raise RuntimeError("server did not start")
        # The rest of stdout (the shutdown lines) is read by stop().

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=timeout)
        self.log.append(out)
        return self.proc.returncode, err

    def http_client(self, **kw):
        return httpclient.InferenceServerClient(f"127.0.0.1:{self.http}", **kw)

    def grpc_client(self):
        return grpcclient.InferenceServerClient(f"127.0.0.1:{self.grpc}")

    def post(self, path, body, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.http, timeout=30)
        conn.request("POST", path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, data

    def get(self, path, port=None):
        conn = http.client.HTTPConnection("127.0.0.1", port or self.http, timeout=30)
        conn.request("GET", path)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, data

    def scrape(self):
        status, body = self.get("/metrics", self.metrics)
        assert status == 200
        return body.decode()


def metric(page, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in page.splitlines():
        if line.startswith("#") or not line.startswith(name + "{"):
            continue
        head, value = line.rsplit(" ", 1)
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def add_model(repo, name, onnx_path, config):
    (repo / name / "1").mkdir(parents=True)
    shutil.copy(onnx_path, repo / name / "1" / "model.onnx")
    (repo / name / "config.pbtxt").write_text(config)


def typed_model(path):
    """One input and one output per protocol datatype the issue lists, rows independent."""
    types = {"f32": TensorProto.FLOAT, "f16": TensorProto.FLOAT16, "i64": TensorProto.INT64,
             "i32": TensorProto.INT32, "b": TensorProto.BOOL, "u8": TensorProto.UINT8}
    inputs = [helper.make_tensor_value_info(n, t, ["batch", 3]) for n, t in types.items()]
    outputs = [helper.make_tensor_value_info(n + "_out", t, ["batch", 3]) for n, t in types.items()]
    nodes = [helper.make_node("Add", ["f32", "f32"], ["f32_out"]),
             helper.make_node("Identity", ["f16"], ["f16_out"]),
             helper.make_node("Add", ["i64", "i64"], ["i64_out"]),
             helper.make_node("Identity", ["i32"], ["i32_out"]),
             helper.make_node("Not", ["b"], ["b_out"]),
             helper.make_node("Identity", ["u8"], ["u8_out"])]
    graph = helper.make_graph(nodes, "typed", inputs, outputs)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


BATCHING = """max_batch_size: 256
dynamic_batching { max_queue_delay_microseconds: 0 }
parameters { key: "threads" value { string_value: "2" } }
"""
# Requests wait up to 1.5 s for a batch of 64 that never fills: a deterministic queue for the
# queue-limit, timeout and shutdown tests.
SLOW_QUEUE = """max_batch_size: 64
dynamic_batching { preferred_batch_size: [ 64 ] max_queue_delay_microseconds: 1500000
                   default_queue_policy { max_queue_size: 2 } }
parameters { key: "threads" value { string_value: "1" } }
"""


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    add_model(repo, "seed", SEED, BATCHING)
    add_model(repo, "seed_unbatched", SEED, 'parameters { key: "threads" value { string_value: "1" } }\n')
    typed = repo.parent / "typed.onnx"
    typed_model(typed)
    add_model(repo, "typed", typed, BATCHING)
    (repo / "seed" / "2").mkdir()  # a second version, served with version_policy all below
    shutil.copy(SEED, repo / "seed" / "2" / "model.onnx")
    (repo / "seed" / "config.pbtxt").write_text(BATCHING + "version_policy { all { } }\n")
    return repo


@pytest.fixture(scope="module")
def server(switchyard_bin, repository):
    s = Server(switchyard_bin, repository, "--max-request-bytes", 1 << 20)
    yield s
    code, err = s.stop()
    assert code == 0, err


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(7)
    return rng.random((256, 1, 28, 28), dtype=np.float32)


@pytest.fixture(scope="module")
def reference(switchyard_bin, images, tmp_path_factory):
    """The in-process result (`switchyard run`) for every image."""
    d = tmp_path_factory.mktemp("ref")
    np.savez(d / "in.npz", image=images)
    subprocess.run([switchyard_bin, "run", str(SEED), "--inputs", str(d / "in.npz"), "--outputs", str(d / "out.npz")],
                   check=True, capture_output=True, timeout=300)
    return np.load(d / "out.npz")["logits"]


def test_metadata_both_protocols(server):
    h, g = server.http_client(), server.grpc_client()
    for c in (h, g):
        assert c.is_server_live() and c.is_server_ready()
        assert c.is_model_ready("seed") and c.is_model_ready("seed", "2") and c.is_model_ready("seed_unbatched")
        assert not c.is_model_ready("nope")
        assert not c.is_model_ready("seed", "7")
    assert h.get_server_metadata()["name"] == "switchyard"
    assert "binary_tensor_data" in h.get_server_metadata()["extensions"]
    assert g.get_server_metadata().name == "switchyard"
    meta = h.get_model_metadata("seed")
    assert meta["versions"] == ["2", "1"]
    assert meta["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 28, 28]}]
    assert meta["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}]
    gmeta = g.get_model_metadata("seed", "1")
    assert gmeta.inputs[0].name == "image" and list(gmeta.inputs[0].shape) == [-1, 1, 28, 28]
    assert list(gmeta.outputs[0].shape) == [-1, 10]


@pytest.mark.parametrize("mode", ["http-json", "http-binary", "grpc"])
def test_infer_matches_in_process(server, images, reference, mode):
    client = server.grpc_client() if mode == "grpc" else server.http_client()
    mod = grpcclient if mode == "grpc" else httpclient
    for rows, model in ((1, "seed"), (5, "seed"), (3, "seed_unbatched")):
        x = images[10:10 + rows]
        inp = mod.InferInput("image", list(x.shape), "FP32")
        if mode == "http-json":
            inp.set_data_from_numpy(x, binary_data=False)
            out = mod.InferRequestedOutput("logits", binary_data=False)
        else:
            inp.set_data_from_numpy(x)
            out = mod.InferRequestedOutput("logits")
        result = client.infer(model, [inp], outputs=[out], request_id="req-42")
        np.testing.assert_allclose(result.as_numpy("logits"), reference[10:10 + rows], rtol=1e-4, atol=1e-4)
        response = result.get_response()
        rid = response["id"] if mode != "grpc" else response.id
        assert rid == "req-42"


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_every_datatype_round_trips(server, protocol):
    client = server.grpc_client() if protocol == "grpc" else server.http_client()
    mod = grpcclient if protocol == "grpc" else httpclient
    rng = np.random.default_rng(1)
    data = {"f32": rng.random((2, 3), dtype=np.float32), "f16": rng.random((2, 3)).astype(np.float16),
            "i64": rng.integers(-2**40, 2**40, (2, 3)), "i32": rng.integers(-2**30, 2**30, (2, 3)).astype(np.int32),
            "b": rng.random((2, 3)) > 0.5, "u8": rng.integers(0, 255, (2, 3)).astype(np.uint8)}
    names = {"f32": "FP32", "f16": "FP16", "i64": "INT64", "i32": "INT32", "b": "BOOL", "u8": "UINT8"}
    for binary in ([True, False] if protocol == "http" else [True]):
        inputs = []
        for n, v in data.items():
            i = mod.InferInput(n, list(v.shape), names[n])
            i.set_data_from_numpy(v, **({"binary_data": binary} if protocol == "http" else {}))
            inputs.append(i)
        outputs = [mod.InferRequestedOutput(n + "_out", **({"binary_data": binary} if protocol == "http" else {}))
                   for n in data]
        r = client.infer("typed", inputs, outputs=outputs)
        np.testing.assert_array_equal(r.as_numpy("f32_out"), data["f32"] + data["f32"])
        np.testing.assert_array_equal(r.as_numpy("f16_out"), data["f16"])
        np.testing.assert_array_equal(r.as_numpy("i64_out"), data["i64"] + data["i64"])
        np.testing.assert_array_equal(r.as_numpy("i32_out"), data["i32"])
        np.testing.assert_array_equal(r.as_numpy("b_out"), ~data["b"])
        np.testing.assert_array_equal(r.as_numpy("u8_out"), data["u8"])


def test_requested_outputs_only(server):
    client = server.http_client()
    i = httpclient.InferInput("i64", [1, 3], "INT64")
    i.set_data_from_numpy(np.array([[1, 2, 3]], dtype=np.int64))
    others = []
    for n, t, v in (("f32", "FP32", np.float32), ("f16", "FP16", np.float16), ("i32", "INT32", np.int32),
                    ("b", "BOOL", bool), ("u8", "UINT8", np.uint8)):
        o = httpclient.InferInput(n, [1, 3], t)
        o.set_data_from_numpy(np.zeros((1, 3), dtype=v))
        others.append(o)
    r = client.infer("typed", [i, *others], outputs=[httpclient.InferRequestedOutput("i64_out")])
    assert [o["name"] for o in r.get_response()["outputs"]] == ["i64_out"]
    np.testing.assert_array_equal(r.as_numpy("i64_out"), [[2, 4, 6]])


def json_request(x, name="image", datatype="FP32", shape=None):
    return json.dumps({"inputs": [{"name": name, "datatype": datatype, "shape": shape or list(x.shape),
                                   "data": x.ravel().tolist()}]})


def assert_error(status, body, expected_status, words):
    assert status == expected_status, (status, body)
    message = json.loads(body)["error"]
    assert "\n" not in message
    for w in words:
        assert w in message, message


def test_bad_http_requests_get_4xx_and_the_server_goes_on(server, images, reference):
    x = images[:1]
    infer = "/v2/models/seed/infer"
    cases = [
        (infer, json_request(x, name="pixels"), {}, 400, ["unknown input 'pixels'", "image"]),
        (infer, json_request(x, shape=[1, 784]), {}, 400, ["shape [1,784]", "[-1,1,28,28]"]),
        (infer, json_request(x.astype(np.float64), datatype="FP64"), {}, 400, ["datatype FP64", "FP32"]),
        (infer, json_request(x, datatype="BYTES"), {}, 400, ["unsupported datatype 'BYTES'"]),
        (infer, json_request(x[..., :-1], shape=[1, 1, 28, 28]), {}, 400, ["756 values in data, expected 784"]),
        (infer, '{"inputs": [', {}, 400, ["malformed JSON"]),
        (infer, '[1, 2]', {}, 400, ["JSON object"]),
        (infer, '{"inputs": []}', {}, 400, ["input 'image' is missing"]),
        ("/v2/models/nope/infer", json_request(x), {}, 404, ["unknown model 'nope'"]),
        ("/v2/models/seed/versions/9/infer", json_request(x), {}, 404, ["unknown version '9'"]),
        ("/v2/nowhere", "{}", {}, 404, ["no such endpoint"]),
        (infer, "x" * (2 << 20), {}, 413, ["larger than the limit"]),
    ]
    # Binary data shorter than declared, and a header length past the body.
    header = json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 28, 28],
                                     "parameters": {"binary_data_size": 3136}}]})
    short = header.encode() + x.tobytes()[:1000]
    cases.append((infer, short, {"Inference-Header-Content-Length": str(len(header))}, 400,
                  ["binary_data_size 3136 runs past the end of the body"]))
    cases.append((infer, short, {"Inference-Header-Content-Length": "999999"}, 400, ["Inference-Header-Content-Length"]))
    big = json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [300, 1, 28, 28],
                                  "parameters": {"binary_data_size": 300 * 3136}}]})
    cases.append((infer, big.encode() + bytes(300 * 3136), {"Inference-Header-Content-Length": str(len(big))}, 400,
                  ["batch size 300 is not in 1..256"]))
    cases.append((infer, header.encode() + x.tobytes() + b"extra", {"Inference-Header-Content-Length": str(len(header))},
                  400, ["5 bytes of the body belong to no input"]))
    for path, body, headers, status, words in cases:
        got_status, got_body = server.post(path, body, headers)
        assert_error(got_status, got_body, status, words)
    # A body shorter than its Content-Length, then the client goes away.
    with socket.create_connection(("127.0.0.1", server.http)) as s:
        s.sendall(b"POST /v2/models/seed/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{\"inputs\"")
    # Still serving, with the right answer.
    status, body = server.post(infer, json_request(images[3:4]))
    assert status == 200
    np.testing.assert_allclose(json.loads(body)["outputs"][0]["data"], reference[3], rtol=1e-4, atol=1e-4)


def test_bad_grpc_requests_get_status_codes(server, images):
    import grpc
    g = server.grpc_client()
    x = images[:1]

    def infer(model="seed", name="image", dtype="FP32", data=x, version=""):
        i = grpcclient.InferInput(name, list(data.shape), dtype)
        i.set_data_from_numpy(data)
        return g.infer(model, [i], model_version=version)

    for kwargs, code, words in [({"name": "pixels"}, "INVALID_ARGUMENT", ["unknown input 'pixels'"]),
                                ({"data": x.reshape(1, 784)}, "INVALID_ARGUMENT", ["shape [1,784]"]),
                                ({"dtype": "FP64", "data": x.astype(np.float64)}, "INVALID_ARGUMENT", ["datatype FP64"]),
                                ({"model": "nope"}, "NOT_FOUND", ["unknown model 'nope'"]),
                                ({"version": "9"}, "NOT_FOUND", ["unknown version '9'"])]:
        with pytest.raises(InferenceServerException) as e:
            infer(**kwargs)
        assert code in str(e.value.status()), e.value
        for w in words:
            assert w in e.value.message()
    # Raw bytes shorter than the shape says.
    from tritonclient.grpc import service_pb2
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc}")
    call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                               request_serializer=lambda b: b, response_deserializer=lambda b: b)
    req = service_pb2.ModelInferRequest(model_name="seed")
    t = req.inputs.add(name="image", datatype="FP32", shape=[1, 1, 28, 28])
    req.raw_input_contents.append(x.tobytes()[:100])
    with pytest.raises(grpc.RpcError) as e:
        call(req.SerializeToString())
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "100 bytes of data, expected 3136" in e.value.details()
    # Not a protobuf at all, and a message over --max-request-bytes.
    with pytest.raises(grpc.RpcError) as e:
        call(b"\xff\xff\xff\xff garbage")
    # gRPC answers a request it cannot parse itself (1.51: UNIMPLEMENTED, empty details); the server goes on.
    assert e.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNIMPLEMENTED)
    with pytest.raises(grpc.RpcError) as e:
        call(b"\x0a" + b"\x00" * (2 << 20))
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    channel.close()
    assert g.infer("seed", [t for t in [grpcclient.InferInput("image", [1, 1, 28, 28], "FP32")]
                            if t.set_data_from_numpy(x) or True]).as_numpy("logits").shape == (1, 10)


def test_metrics_count_requests_and_expert_tokens_under_load(server, images):
    before = server.scrape()
    client = server.grpc_client()
    n = 200
    for r in range(n):
        i = grpcclient.InferInput("image", [1, 1, 28, 28], "FP32")
        i.set_data_from_numpy(images[r:r + 1])
        client.infer("seed", [i], model_version="1")
    after = server.scrape()
    labels = {"model": "seed", "version": "1"}
    assert metric(after, "nv_inference_request_success", **labels) - metric(before, "nv_inference_request_success", **labels) == n
    assert metric(after, "nv_inference_count", **labels) - metric(before, "nv_inference_count", **labels) == n
    assert metric(after, "ovms_request_time_us_count", **labels) - metric(before, "ovms_request_time_us_count", **labels) == n
    for name in ("nv_inference_exec_count", "nv_inference_request_failure", "nv_inference_pending_request_count",
                 "nv_inference_queue_duration_us", "nv_inference_compute_infer_duration_us", "switchyard_batch_size_bucket"):
        assert f"\n{name}{{" in after, name
    # Top-2 routing: every image adds 2 expert tokens (noise images all route alike: 2 experts move).
    moved = [metric(after, "switchyard_expert_tokens_total", expert=str(e), **labels) -
             metric(before, "switchyard_expert_tokens_total", expert=str(e), **labels) for e in range(8)]
    assert sum(moved) == 2 * n
    assert sum(1 for m in moved if m > 0) >= 2, moved
    assert 'layer="moe_fused_' in after


def start_slow_requests(server, images, count, results, **infer_kwargs):
    def one(k):
        try:
            c = server.http_client()
            i = httpclient.InferInput("image", [1, 1, 28, 28], "FP32")
            i.set_data_from_numpy(images[k:k + 1])
            results[k] = c.infer("slow", [i], **infer_kwargs).as_numpy("logits")
        except InferenceServerException as e:
            results[k] = e
    threads = [threading.Thread(target=one, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    return threads


def test_queue_limit_answers_503_and_timeouts_504(switchyard_bin, tmp_path, images, reference):
    add_model(tmp_path, "slow", SEED, SLOW_QUEUE)
    server = Server(switchyard_bin, tmp_path)
    try:
        results = {}
        threads = start_slow_requests(server, images, 3, results)
        for t in threads:
            t.join()
        refused = [r for r in results.values() if isinstance(r, InferenceServerException)]
        assert len(refused) == 1 and refused[0].status() == "503" and "queue is full" in refused[0].message()
        served = [k for k, r in results.items() if not isinstance(r, InferenceServerException)]
        for k in served:
            np.testing.assert_allclose(results[k], reference[k:k + 1], rtol=1e-4, atol=1e-4)
        # A request whose timeout (microseconds) passes in the queue.
        results = {}
        for t in start_slow_requests(server, images, 1, results, timeout=1000):
            t.join()
        assert isinstance(results[0], InferenceServerException) and results[0].status() == "504"
        assert "timed out" in results[0].message()
    finally:
        code, err = server.stop()
    assert code == 0, err


def test_sigterm_finishes_requests_in_flight(switchyard_bin, tmp_path, images, reference):
    add_model(tmp_path, "slow", SEED, SLOW_QUEUE.replace("max_queue_size: 2", "max_queue_size: 16"))
    server = Server(switchyard_bin, tmp_path)
    results = {}
    threads = start_slow_requests(server, images, 6, results)  # all wait ~1.5 s in the queue
    server.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join()
    code, err = server.stop()
    assert code == 0, err
    for k in range(6):
        assert not isinstance(results[k], Exception), results[k]
        np.testing.assert_allclose(results[k], reference[k:k + 1], rtol=1e-4, atol=1e-4)
    assert "SIGTERM: finishing the requests in flight" in "".join(server.log)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.http), timeout=2).close()


def test_startup_errors_are_one_line(switchyard_bin, tmp_path):
    def start(repo):
        p = subprocess.run([switchyard_bin, "serve", "--model-repository", str(repo), "--http-port", "0",
                            "--grpc-port", "0", "--metrics-port", "0"], capture_output=True, text=True, timeout=120)
        assert p.returncode != 0
        assert p.stderr.count("\n") == 1, p.stderr
        return p.stderr
    assert "is not a directory" in start(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    assert "no model folders" in start(tmp_path / "empty")
    add_model(tmp_path / "typo", "m", SEED, "max_batch_size: 8\ndynamic_batching { max_delay: 5 }\n")
    assert "config.pbtxt:2" in start(tmp_path / "typo") and "max_delay" in start(tmp_path / "typo")
    add_model(tmp_path / "wrongdims", "m", SEED, 'max_batch_size: 8\ninput [ { name: "image" dims: [ 784 ] } ]\n')
    assert "has dims [784] in the config but shape [-1,1,28,28]" in start(tmp_path / "wrongdims")
    (tmp_path / "noversion" / "m").mkdir(parents=True)
    assert "no version folder" in start(tmp_path / "noversion")
    bad = tmp_path / "corrupt"
    (bad / "m" / "1").mkdir(parents=True)
    (bad / "m" / "1" / "model.onnx").write_bytes(b"not onnx")
    assert "model 'm'" in start(bad)


@pytest.mark.skipif(SANITIZED, reason="the load test runs on the optimised build")
def test_load_64_clients_1000_requests_each(server, images, reference):
    """64 concurrent tritonclient gRPC clients x 1,000 batch-1 requests, distinct inputs, all exact."""
    clients, per_client = 64, 1000
    errors, mismatches, done = [], [], [0]
    lock = threading.Lock()

    def client(c):
        g = server.grpc_client()
        for r in range(per_client):
            k = (c * 131 + r * 17) % len(images)
            i = grpcclient.InferInput("image", [1, 1, 28, 28], "FP32")
            i.set_data_from_numpy(images[k:k + 1])
            try:
                y = g.infer("seed", [i], model_version="1").as_numpy("logits")
            except Exception as e:  # noqa: BLE001 - counted, reported below
                errors.append(repr(e))
                continue
            if not np.allclose(y, reference[k:k + 1], rtol=1e-4, atol=1e-4):
                mismatches.append(k)
        with lock:
            done[0] += per_client

    before = server.scrape()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert not mismatches, mismatches[:10]
    assert done[0] == clients * per_client
    after = server.scrape()
    labels = {"model": "seed", "version": "1"}
    assert metric(after, "nv_inference_request_success", **labels) - \
        metric(before, "nv_inference_request_success", **labels) == clients * per_client


def test_shipped_repository_and_client_example(switchyard_bin):
    """The README's commands: the shipped repository served, queried by examples/python/kserve_client.py."""
    server = Server(switchyard_bin, ROOT / "models" / "repository")
    try:
        out = subprocess.run([sys.executable, str(ROOT / "examples" / "python" / "kserve_client.py"),
                              "--http", f"127.0.0.1:{server.http}", "--grpc", f"127.0.0.1:{server.grpc}"],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "classes over gRPC:" in out.stdout
        assert "batching on (max_batch_size 256" in "".join(server.log)
    finally:
        code, err = server.stop()
    assert code == 0, err
