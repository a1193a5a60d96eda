"""Bad input gets one clear error line and a non-zero exit, never a crash or a partial output file."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from conftest import FIXTURES

SEED = FIXTURES / "seed_e8_k2_script.onnx"
SEED_INPUTS = FIXTURES / "seed_e8_k2_script.inputs.npz"


def expect_error(cli, fragment, *args, out=None):
    proc = cli(*args, check=False)
    assert proc.returncode != 0
    assert proc.returncode < 128, "crashed with a signal"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("switchyard: error: ")
    assert fragment in lines[0], lines[0]
    if out is not None:
        assert not out.exists(), "a partial output file was left behind"
        assert not list(out.parent.glob("*.tmp-switchyard"))


def test_truncated_model(cli, tmp_path):
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(SEED.read_bytes()[:5000])
    out = tmp_path / "out.npz"
    expect_error(cli, "not a valid ONNX model", "run", bad, "--inputs", SEED_INPUTS, "--outputs", out, out=out)


def test_garbage_model(cli, tmp_path):
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(bytes(range(256)) * 40)
    expect_error(cli, "not a valid ONNX model", "inspect", bad)


def test_missing_model_file(cli, tmp_path):
    expect_error(cli, "cannot open", "run", tmp_path / "nope.onnx", "--inputs", SEED_INPUTS)


def test_missing_input(cli, tmp_path):
    np.savez(tmp_path / "empty.npz", other=np.zeros(1, np.float32))
    expect_error(cli, "unknown input 'other'", "run", SEED, "--inputs", tmp_path / "empty.npz")


def test_input_not_set(cli, tmp_path):
    expect_error(cli, "input 'image' was not set", "run", SEED)


def test_wrong_dtype(cli, tmp_path):
    np.savez(tmp_path / "in.npz", image=np.zeros((2, 1, 28, 28), np.float64))
    out = tmp_path / "out.npz"
    expect_error(cli, "expected dtype float32, got float64", "run", SEED, "--inputs", tmp_path / "in.npz",
                 "--outputs", out, out=out)


def test_wrong_rank(cli, tmp_path):
    np.savez(tmp_path / "in.npz", image=np.zeros((2, 784), np.float32))
    expect_error(cli, "expected rank 4", "run", SEED, "--inputs", tmp_path / "in.npz")


def test_wrong_fixed_dim(cli, tmp_path):
    np.savez(tmp_path / "in.npz", image=np.zeros((2, 1, 28, 27), np.float32))
    expect_error(cli, "dimension 3 must be 28", "run", SEED, "--inputs", tmp_path / "in.npz")


def test_unsupported_op_is_named_with_domain_and_opset(cli, tmp_path):
    graph = helper.make_graph([helper.make_node("Hardmax", ["x"], ["y"]),
                               helper.make_node("FancyOp", ["y"], ["z"], domain="com.example")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    path = tmp_path / "unsupported.onnx"
    onnx.save(model, path)
    proc = cli("run", path, check=False)
    assert proc.returncode != 0
    assert "ai.onnx::Hardmax (opset 17)" in proc.stderr and "com.example::FancyOp (opset 1)" in proc.stderr


def test_unreadable_npz(cli, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    expect_error(cli, "not a readable .npz archive", "run", SEED, "--inputs", bad)


def test_corrupt_npy_member(cli, tmp_path):
    bad = tmp_path / "bad.npy"
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((2, 1, 28, 28), np.float32))
    bad.write_bytes(good.read_bytes()[:-100])
    expect_error(cli, "data bytes", "run", SEED, "--input", f"image={bad}")


def test_hostile_npy_shape(cli, tmp_path):
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }"
    header += b" " * (117 - len(header)) + b"\n"
    (tmp_path / "huge.npy").write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header)
    expect_error(cli, "too many elements", "run", SEED, "--input", f"image={tmp_path / 'huge.npy'}")


def test_external_data_outside_model_folder_is_refused(cli, tmp_path):
    tensor = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0])
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in {"location": "../secret.bin", "offset": "0", "length": "8"}.items():
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], [tensor])
    path = tmp_path / "ext.onnx"
    onnx.save(helper.make_model(graph), path)
    expect_error(cli, "contains '..'", "inspect", path)


def test_initializer_size_mismatch(cli, tmp_path):
    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1000, 1000], float_data=[1.0, 2.0])
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], [tensor])
    path = tmp_path / "mismatch.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    expect_error(cli, "holds 2 values", "inspect", path)


def test_cyclic_graph(cli, tmp_path):
    graph = helper.make_graph([helper.make_node("Relu", ["b"], ["a"]), helper.make_node("Relu", ["a"], ["b"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("b", TensorProto.FLOAT, [2])])
    path = tmp_path / "cycle.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    expect_error(cli, "has a cycle", "inspect", path)


def test_dangling_edge(cli, tmp_path):
    graph = helper.make_graph([helper.make_node("Relu", ["nowhere"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    path = tmp_path / "dangling.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    expect_error(cli, "input 'nowhere' is not produced", "inspect", path)


def test_runtime_shape_error_names_the_node(cli, tmp_path):
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "y"], ["z"], name="mm")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)])
    path = tmp_path / "mm.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    np.savez(tmp_path / "in.npz", x=np.zeros((2, 3), np.float32), y=np.zeros((4, 5), np.float32))
    out = tmp_path / "out.npz"
    expect_error(cli, "node 'mm' (ai.onnx::MatMul-17): inner dimensions differ", "run", path, "--inputs",
                 tmp_path / "in.npz", "--outputs", out, out=out)


def test_unsupported_opset(cli, tmp_path):
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    path = tmp_path / "opset.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 99)]), path)
    expect_error(cli, "default-domain opset 99 is not supported", "inspect", path)
