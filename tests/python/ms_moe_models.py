"""Builders for ONNX Runtime's com.microsoft.MoE test models (router MatMul + MoE node)."""
import sys
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper


def build(E, k, H, I, activation="relu", normalize=0, biases=True, fusion=0, seed=0, scale=0.2, alpha=None, beta=None):
    rng = np.random.default_rng(seed)
    f = 2 if activation == "swiglu" and fusion in (1, 2) else 1
    inits = {
        "router_w": rng.normal(0, 1, (H, E)).astype(np.float32),
        "fc1_w": rng.normal(0, scale, (E, f * I, H)).astype(np.float32),
        "fc2_w": rng.normal(0, scale, (E, H, I)).astype(np.float32),
    }
    moe_inputs = ["x", "logits", "fc1_w", "fc1_b" if biases else "", "fc2_w", "fc2_b" if biases else ""]
    if biases:
        inits["fc1_b"] = rng.normal(0, 0.1, (E, f * I)).astype(np.float32)
        inits["fc2_b"] = rng.normal(0, 0.1, (E, H)).astype(np.float32)
    if activation == "swiglu" and fusion == 0:
        inits["fc3_w"] = rng.normal(0, scale, (E, I, H)).astype(np.float32)
        moe_inputs += ["fc3_w"]
        if biases:
            inits["fc3_b"] = rng.normal(0, 0.1, (E, I)).astype(np.float32)
            moe_inputs += ["fc3_b"]
    while moe_inputs[-1] == "":
        moe_inputs.pop()
    attrs = dict(k=k, activation_type=activation, normalize_routing_weights=normalize)
    if activation == "swiglu":
        attrs["swiglu_fusion"] = fusion
        if alpha is not None:
            attrs["activation_alpha"] = alpha
        if beta is not None:
            attrs["activation_beta"] = beta
    nodes = [helper.make_node("MatMul", ["x", "router_w"], ["logits"]),
             helper.make_node("MoE", moe_inputs, ["y"], domain="com.microsoft", **attrs)]
    graph = helper.make_graph(nodes, "moe", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["tokens", H])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["tokens", H])],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])



def to_qmoe(model, bits, block=0):
    """The model with its com.microsoft.MoE nodes as com.microsoft.QMoE (tools/quantize.py --weights-only)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
    from quantize import moe_to_qmoe
    return moe_to_qmoe(model, bits, block)
