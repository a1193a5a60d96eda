"""The Python package: ONNX Runtime-style InferenceSession, OpenVINO-style AsyncInferQueue, zero-copy
inputs, the GIL released while computing."""
import threading
import time

import numpy as np
import onnx
import pytest

switchyard = pytest.importorskip("switchyard")

from conftest import FIXTURES, ROOT  # noqa: E402
from ms_moe_models import build  # noqa: E402

SEED = str(ROOT / "models" / "seed_classifier.onnx")


def test_session_matches_fixture():
    name = "mixtral_block_script"
    session = switchyard.InferenceSession(str(FIXTURES / f"{name}.onnx"), threads=2)
    feeds = dict(np.load(FIXTURES / f"{name}.inputs.npz"))
    expected = np.load(FIXTURES / f"{name}.expected.npz")
    (out,) = session.run(None, feeds)
    np.testing.assert_allclose(out, expected["out"], atol=1e-4)
    (named,) = session.run(["out"], feeds)
    np.testing.assert_array_equal(named, out)
    assert [i.name for i in session.get_inputs()] == ["hidden"]
    assert session.get_inputs()[0].shape == ["batch", "seq", 32]
    assert session.get_outputs()[0].type == "tensor(float)"
    assert any("fused MoE layer" in n for n in session.compile_notes)


def test_input_is_not_copied():
    session = switchyard.InferenceSession(SEED)
    x = np.random.default_rng(0).random((5, 1, 28, 28), dtype=np.float32)
    session.run(None, {"image": x})
    assert session._last_input_pointers()["image"] == x.ctypes.data
    # A non-contiguous view is made contiguous (a copy), and still gives the same answer.
    big = np.random.default_rng(1).random((5, 1, 28, 56), dtype=np.float32)
    view = big[:, :, :, ::2]
    np.testing.assert_allclose(session.run(None, {"image": view})[0],
                               session.run(None, {"image": np.ascontiguousarray(view)})[0])


def test_other_threads_run_while_computing(tmp_path):
    path = tmp_path / "moe.onnx"
    onnx.save(build(E=8, k=2, H=512, I=1024, activation="relu", normalize=1, biases=False), path)
    session = switchyard.InferenceSession(str(path), threads=1)
    x = np.random.default_rng(0).normal(0, 1, (4096, 512)).astype(np.float32)
    session.run(None, {"x": x})  # warm-up
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.0005)

    t = threading.Thread(target=ticker)
    t.start()
    time.sleep(0.01)
    start = time.perf_counter()
    session.run(None, {"x": x})  # one call of tens of milliseconds
    end = time.perf_counter()
    stop.set()
    t.join()
    during = [s for s in ticks if start < s < end]
    assert end - start > 0.01
    assert len(during) >= 3, f"the ticker ran {len(during)} times during a {1e3 * (end - start):.1f} ms call"


def test_async_queue_callbacks_with_userdata():
    session = switchyard.InferenceSession(SEED, threads=2, hint="throughput", auto_batch=0)
    assert session.streams == 2
    images = np.random.default_rng(2).random((200, 1, 1, 28, 28), dtype=np.float32)
    expected = [session.run(None, {"image": im})[0] for im in images]
    results = {}

    def callback(request, userdata):
        assert request.error is None
        results[userdata] = results.get(userdata, []) + [request.outputs[0]]

    queue = switchyard.AsyncInferQueue(session, jobs=4)
    assert len(queue) == 4
    queue.set_callback(callback)
    for i, im in enumerate(images):
        queue.start_async({"image": im}, i)
    queue.wait_all()
    assert queue.is_ready()
    assert sorted(results) == list(range(len(images)))
    for i, outs in results.items():
        assert len(outs) == 1
        np.testing.assert_array_equal(outs[0], expected[i])


def test_errors_are_exceptions_and_session_stays_usable():
    session = switchyard.InferenceSession(SEED)
    with pytest.raises(switchyard.SwitchyardError, match="expected dtype float32, got float64"):
        session.run(None, {"image": np.zeros((1, 1, 28, 28))})
    with pytest.raises(switchyard.SwitchyardError, match="unknown output"):
        session.run(["nope"], {"image": np.zeros((1, 1, 28, 28), np.float32)})
    with pytest.raises(switchyard.SwitchyardError, match="cannot open"):
        switchyard.InferenceSession("/nonexistent.onnx")
    assert session.run(None, {"image": np.zeros((2, 1, 28, 28), np.float32)})[0].shape == (2, 10)


def test_large_outputs_are_handed_over_without_copy(tmp_path):
    # Relu over [N, 4096]: 1 MiB outputs. Each call's result is the request's own buffer, handed over
    # (the array's base keeps it alive); the next call writes a new buffer, not the old one.
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4096])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4096])])
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    session = switchyard.InferenceSession(str(path), threads=1)
    a = np.random.default_rng(0).normal(size=(64, 4096)).astype(np.float32)
    b = -a
    ya, = session.run(None, {"x": a})
    yb, = session.run(None, {"x": b})
    assert not ya.flags.owndata and ya.base is not None  # not a copy made by NumPy
    assert not np.shares_memory(ya, yb)
    np.testing.assert_array_equal(ya, np.maximum(a, 0))  # untouched by the second call
    np.testing.assert_array_equal(yb, np.maximum(b, 0))
    small, = switchyard.InferenceSession(SEED).run(None, {"image": np.zeros((1, 1, 28, 28), np.float32)})
    assert small.flags.owndata  # 40 bytes: copied, cheaper than a new buffer
