"""The ONNX sequence family inside a graph (SplitToSequence, SequenceInsert/At/Erase/Length,
SequenceConstruct, ConcatFromSequence) and a sequence carried through a Loop, against NumPy."""
import os
import tempfile

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

switchyard = pytest.importorskip("switchyard")  # the sanitizer run has the CLI only


def run(graph, feeds, opset=17):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return switchyard.InferenceSession(_save(model), threads=1).run(None, feeds)


def _save(model):
    path = os.path.join(tempfile.mkdtemp(), "model.onnx")
    onnx.save(model, path)
    return path


def const(name, value):
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, TensorProto.INT64, [], [value]))


def test_sequence_ops_inside_a_graph():
    x = np.arange(24, dtype=np.float32).reshape(4, 6)
    nodes = [
        helper.make_node("SplitToSequence", ["x"], ["parts"], axis=0, keepdims=1),        # 4 x [1, 6]
        helper.make_node("SequenceConstruct", ["x"], ["one"]),
        const("zero", 0), const("minus1", -1), const("two", 2),
        helper.make_node("SequenceAt", ["one", "zero"], ["x_again"]),
        helper.make_node("Slice", ["x_again", "s0", "s1", "s2"], ["row"]),                   # [1, 6]
        helper.make_node("SequenceInsert", ["parts", "row", "zero"], ["parts5"]),          # x[3] in front
        helper.make_node("SequenceErase", ["parts5", "two"], ["parts4"]),                   # drops x[1]
        helper.make_node("SequenceLength", ["parts4"], ["n"]),
        helper.make_node("ConcatFromSequence", ["parts4"], ["cat"], axis=0),
        helper.make_node("ConcatFromSequence", ["parts4"], ["stacked"], axis=0, new_axis=1),
        helper.make_node("SequenceAt", ["parts4", "minus1"], ["last"]),
    ]
    inits = [helper.make_tensor("s0", TensorProto.INT64, [1], [3]), helper.make_tensor("s1", TensorProto.INT64, [1], [4]),
             helper.make_tensor("s2", TensorProto.INT64, [1], [0])]
    g = helper.make_graph(nodes, "seq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 6])],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("cat", "stacked", "last")] +
                          [helper.make_tensor_value_info("n", TensorProto.INT64, [])], inits)
    cat, stacked, last, n = run(g, {"x": x})
    want = np.concatenate([x[3:4], x[0:1], x[2:3], x[3:4]])
    np.testing.assert_array_equal(cat, want)
    np.testing.assert_array_equal(stacked, want[:, None, :])
    np.testing.assert_array_equal(last, x[3:4])
    assert int(n) == 4


def test_sequence_carried_through_a_loop():
    """for i in range(3): outs.append(x * i); torch.cat(outs) — the list is a Loop-carried sequence."""
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    body = helper.make_graph(
        [helper.make_node("Cast", ["i"], ["fi"], to=TensorProto.FLOAT),
         helper.make_node("Mul", ["x", "fi"], ["xi"]),
         helper.make_node("SequenceInsert", ["seq_in", "xi"], ["seq_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_sequence_value_info("seq_in", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_sequence_value_info("seq_out", TensorProto.FLOAT, None)])
    nodes = [helper.make_node("SequenceEmpty", [], ["empty"], dtype=TensorProto.FLOAT),
             helper.make_node("Loop", ["trips", "cond", "empty"], ["seq"], body=body),
             helper.make_node("ConcatFromSequence", ["seq"], ["y"], axis=0)]
    inits = [helper.make_tensor("trips", TensorProto.INT64, [], [3]), helper.make_tensor("cond", TensorProto.BOOL, [], [True])]
    g = helper.make_graph(nodes, "loopseq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    (y,) = run(g, {"x": x})
    np.testing.assert_array_equal(y, np.concatenate([x * 0, x * 1, x * 2]))


def test_sequence_as_model_output_is_refused(tmp_path):
    g = helper.make_graph([helper.make_node("SplitToSequence", ["x"], ["s"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_sequence_value_info("s", TensorProto.FLOAT, None)])
    path = _save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    try:
        switchyard.InferenceSession(path)
    except Exception as e:
        assert "sequence type" in str(e)
    else:
        raise AssertionError("a sequence-typed model output was accepted")
