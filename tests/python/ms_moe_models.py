"""Builders for ONNX Runtime's com.microsoft.MoE test models (router MatMul + MoE node)."""
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


def quantize_symmetric(w, bits, block):
    """ONNX Runtime's QMoE weight format for w [E, rows, K]: unsigned codes q + 2^(bits-1) (two per byte
    for 4 bits, lower index in the low nibble) and scales max|w| / qmax per row or per block of K."""
    E, rows, K = w.shape
    qmax = (1 << (bits - 1)) - 1
    blocks = w.reshape(E, rows, -1, block) if block else w[:, :, None, :]
    scale = np.maximum(np.abs(blocks).max(axis=-1), 1e-8) / qmax
    q = np.clip(np.rint(blocks / scale[..., None]), -qmax - 1, qmax).astype(np.int32) + (1 << (bits - 1))
    q = q.reshape(E, rows, K).astype(np.uint8)
    if bits == 4:
        q = (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)
    return q, (scale if block else scale[..., 0]).astype(np.float32)


def to_qmoe(model, bits, block=0):
    """The com.microsoft.MoE model of build() as com.microsoft.QMoE with weights quantized as ONNX Runtime's."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    moe = model.graph.node[1]
    names = list(moe.input) + [""] * (8 - len(moe.input))
    x, logits, fc1, b1, fc2, b2, fc3, b3 = names
    new_inits, inputs = [numpy_helper.from_array(inits["router_w"], "router_w")], [x, logits]
    for w, b in ((fc1, b1), (fc2, b2), (fc3, b3)):
        if not w:
            inputs += ["", "", ""]
            continue
        q, s = quantize_symmetric(inits[w], bits, block)
        new_inits += [numpy_helper.from_array(q, w + "_q"), numpy_helper.from_array(s, w + "_s")]
        inputs += [w + "_q", w + "_s", b]
        if b:
            new_inits.append(numpy_helper.from_array(inits[b], b))
    while inputs[-1] == "":
        inputs.pop()
    attrs = {a.name: helper.get_attribute_value(a) for a in moe.attribute}
    attrs["expert_weight_bits"] = bits
    if block:
        attrs["block_size"] = block
    nodes = [model.graph.node[0], helper.make_node("QMoE", inputs, ["y"], domain="com.microsoft", **attrs)]
    graph = helper.make_graph(nodes, "qmoe", list(model.graph.input), list(model.graph.output), new_inits)
    return helper.make_model(graph, opset_imports=list(model.opset_import))
