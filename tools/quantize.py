#!/usr/bin/env python3
"""switchyard quantize: static INT8 post-training quantization of an ONNX model into the QDQ format.

    switchyard quantize MODEL.onnx -o OUT.onnx [--calibration fashion-mnist | --calibration DATA.npz]
                        [--samples 512] [--batch 64] [--method minmax|percentile|entropy]
                        [--percentile 99.999] [--per-tensor] [--exclude-nodes NAME ...]
                        [--exclude-types OP ...] [--quantize-router] [--uint8-activations]
    switchyard quantize MODEL.onnx -o OUT.onnx --weights-only [--bits 8|4] [--block-size N]
                        [--exclude-nodes ...] [--exclude-types ...]

Calibration runs the model (ONNX Runtime) over the calibration inputs and records each activation's
range (min-max, a percentile of |x|, or the entropy method); weights get per-channel INT8 scales
(per-tensor with --per-tensor), so every expert's Gemm has its own scales. The output is standard ONNX
(QuantizeLinear / DequantizeLinear around the quantized ops, opset >= 13) that ONNX Runtime runs with
its INT8 kernels and Switchyard loads (DequantizeLinear of the weights folds at compile time).

Percentile and entropy calibration run the calibration set as one batch (ONNX Runtime's histogram
calibrators cannot stack tensors whose shape depends on the data, such as each expert's rows).

Ignored scope: --exclude-nodes / --exclude-types keep nodes in FP32. By default the MoE routers stay
FP32 too: every MatMul / Gemm whose result reaches a TopK through routing-score ops (Softmax, Sigmoid,
Add, ...) without another MatMul / Gemm, together with those ops, so quantization never changes which
experts a token goes to (--quantize-router to quantize them anyway). The router reads the same
(quantized) activation as the experts; its weights and arithmetic stay FP32.

--weights-only (weight compression, as NNCF's compress_weights): no calibration; the constant weights of
ai.switchyard::MoE nodes (routed and shared experts) and of MatMul / Gemm become INT8, symmetric, one
scale per output channel (per expert and channel for stacked experts), stored as INT8 initializers
behind DequantizeLinear (opset >= 13; a Reshape / Transpose restores stacked layouts). com.microsoft.MoE
nodes become com.microsoft.QMoE, ONNX Runtime's quantized MoE, with INT8 or INT4 (--bits 4) experts, one
scale per row or per --block-size inputs, which ONNX Runtime runs with its own kernels. Activations stay FP32 in the file; routers stay FP32. The file is ~4x smaller, ONNX
Runtime runs it (dequantizing), and Switchyard runs MoE layers with such weights at precision int8 with
these exact codes. Models that ONNX Runtime cannot run (ai.switchyard::MoE) can only be compressed
this way, since static quantization calibrates by running the model in ONNX Runtime.

The quantizer itself is ONNX Runtime's (onnxruntime.quantization.quantize_static): this tool adds the
calibration sources, the router scope, a progress line, checks, and an atomic write (nothing is left
behind on error). Errors are one line on stderr and exit code 1.
"""
import argparse
import gzip
import os
import sys
import tempfile

DATASETS = {"fashion-mnist": "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"}
ROUTING_OPS = {"Softmax", "Sigmoid", "Add", "Sub", "Mul", "Div", "Reshape", "Flatten", "Cast", "Identity",
               "Squeeze", "Unsqueeze", "Transpose", "LogSoftmax"}


class QuantizeError(Exception):
    pass


def router_nodes(model):
    """Indices of the MoE router nodes: MatMul/Gemm -> routing-score ops -> TopK (or com.microsoft.MoE's
    router_probs); the C++ side keeps unfused routers FP32 by the same rule (keep_routers_fp32.cpp)."""
    nodes = list(model.graph.node)
    producer = {out: i for i, node in enumerate(nodes) for out in node.output}
    keep = set()
    for node in nodes:
        if node.op_type == "TopK":
            stack = [node.input[0]]
        elif node.op_type in ("MoE", "QMoE") and node.domain == "com.microsoft":
            stack = [node.input[1]]  # router_probs: ONNX Runtime's MoE does the top-k itself
        else:
            continue
        path = []
        while stack:
            src = producer.get(stack.pop())
            if src is None:
                continue
            if nodes[src].op_type in ("MatMul", "Gemm"):
                keep.add(src)
                keep.update(path)
            elif nodes[src].op_type in ROUTING_OPS:
                path.append(src)
                stack.extend(i for i in nodes[src].input[:1] if i)
    return keep


def fashion_mnist(shape, samples):
    import numpy as np
    with gzip.open(DATASETS["fashion-mnist"], "rb") as f:
        pixels = np.frombuffer(f.read(), np.uint8, offset=16)
    images = pixels.reshape(-1, 784)[:samples].astype(np.float32) / 255.0
    dims = [d if isinstance(d, int) and d > 0 else -1 for d in shape]
    if len(dims) == 4:
        return images.reshape(-1, 1, 28, 28)
    if len(dims) == 3:
        return images.reshape(-1, 28, 28)
    return images


def calibration_inputs(args, model):
    """{input name: array [N, ...]} from the dataset or the .npz (one array per graph input)."""
    import numpy as np
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if args.calibration in DATASETS:
        if len(inputs) != 1:
            raise QuantizeError(f"--calibration {args.calibration} feeds one input, the model has {len(inputs)}")
        if not os.path.exists(DATASETS[args.calibration]):
            raise QuantizeError(f"{DATASETS[args.calibration]} not found (Debian package dataset-fashion-mnist)")
        shape = [d.dim_value if d.HasField("dim_value") else -1 for d in inputs[0].type.tensor_type.shape.dim]
        return {inputs[0].name: fashion_mnist(shape, args.samples)}
    if not os.path.exists(args.calibration):
        raise QuantizeError(f"calibration data '{args.calibration}' not found (a .npz, or: {', '.join(DATASETS)})")
    try:
        data = dict(np.load(args.calibration))
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's error
        raise QuantizeError(f"calibration data '{args.calibration}' is not a readable .npz: {e}") from None
    feeds = {}
    for i in inputs:
        if i.name not in data:
            raise QuantizeError(f"calibration data '{args.calibration}' has no array '{i.name}' "
                                f"(it has: {', '.join(sorted(data)) or 'nothing'})")
        feeds[i.name] = data[i.name][:args.samples]
    counts = {len(v) for v in feeds.values()}
    if len(counts) != 1 or 0 in counts:
        raise QuantizeError("calibration arrays must have the same, non-zero number of rows")
    return feeds


class Reader:
    """onnxruntime.quantization.CalibrationDataReader over batches, with a progress line."""

    def __init__(self, feeds, batch):
        rows = len(next(iter(feeds.values())))
        self.batches = [{k: v[i:i + batch] for k, v in feeds.items()} for i in range(0, rows, batch)]
        self.at = 0

    def get_next(self):
        if self.at >= len(self.batches):
            if self.at == len(self.batches):
                print(file=sys.stderr)
                self.at += 1
            return None
        self.at += 1
        print(f"\rcalibrating: batch {self.at}/{len(self.batches)}", end="", file=sys.stderr, flush=True)
        return self.batches[self.at - 1]


# Expert weight inputs of the MoE operators, all [experts, out, in] (nn.Linear per expert); shared
# experts of ai.switchyard::MoE are [out, in]. Routers (input 1 / router_probs) are never touched.
MOE_WEIGHT_INPUTS = {"ai.switchyard": (3, 5, 7, 14, 15, 16)}


def int8_per_channel(w, reduce_axis):
    """Symmetric INT8 codes [C, K] and scales [C]: the reduction axis last, every other axis a channel."""
    import numpy as np
    perm = [a for a in range(w.ndim) if a != reduce_axis] + [reduce_axis]
    moved = np.ascontiguousarray(w.transpose(perm))
    rows = moved.reshape(-1, moved.shape[-1]).astype(np.float32)
    amax = np.abs(rows).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    codes = np.clip(np.rint(rows / scale[:, None]), -127, 127).astype(np.int8)
    return codes, scale, perm, moved.shape


def compress_weights(model, exclude, routers=(), bits=8, block=0):
    """The model with the MoE / MatMul / Gemm weights compressed: com.microsoft.MoE nodes become QMoE
    (INT8 or INT4), the other weights INT8 behind DequantizeLinear."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:
        raise QuantizeError(f"--weights-only needs ai.onnx opset >= 13 for per-channel scales (the model has {opset})")
    qmoe = [n for n in model.graph.node if n.op_type == "MoE" and n.domain == "com.microsoft" and n.name not in exclude]
    if qmoe:
        model = moe_to_qmoe(model, bits, block, exclude)
    elif bits == 4:
        raise QuantizeError("--bits 4 applies to com.microsoft.MoE experts (ONNX Runtime's QMoE); the model has none")
    initializers = {t.name: t for t in model.graph.initializer}
    targets = {}  # initializer name -> reduction axis
    for index, node in enumerate(model.graph.node):
        if node.name in exclude or index in routers:
            continue
        if node.op_type == "MoE" and node.domain == "ai.switchyard":
            for slot in MOE_WEIGHT_INPUTS[node.domain]:
                if slot < len(node.input) and node.input[slot] in initializers:
                    targets[node.input[slot]] = -1
        elif node.op_type == "MatMul" and node.domain == "" and node.input[1] in initializers:
            if len(initializers[node.input[1]].dims) >= 2:
                targets[node.input[1]] = -2
        elif node.op_type == "Gemm" and node.domain == "" and node.input[1] in initializers:
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            targets[node.input[1]] = 1 if trans_b else 0
    if not targets and not qmoe:
        raise QuantizeError("--weights-only: the model has no MoE, MatMul or Gemm weights to compress")
    kept, nodes, before, after = [], [], 0, 0
    for t in model.graph.initializer:
        if t.name not in targets or t.data_type != onnx.TensorProto.FLOAT:
            kept.append(t)
            continue
        w = numpy_helper.to_array(t)
        codes, scale, perm, moved_shape = int8_per_channel(w, targets[t.name] % w.ndim)
        before, after = before + w.nbytes, after + codes.nbytes + scale.nbytes
        base = t.name
        kept += [numpy_helper.from_array(codes, base + "_quantized"), numpy_helper.from_array(scale, base + "_scale")]
        reshaped = len(moved_shape) != 2
        transposed = perm != list(range(w.ndim))
        dq_out = base + "_dequantized" if (reshaped or transposed) else base
        nodes.append(helper.make_node("DequantizeLinear", [base + "_quantized", base + "_scale"], [dq_out], axis=0,
                                      name=base + "_DequantizeLinear"))
        if reshaped:
            shape_name = base + "_shape"
            kept.append(numpy_helper.from_array(np.array(moved_shape, np.int64), shape_name))
            out = base + "_reshaped" if transposed else base
            nodes.append(helper.make_node("Reshape", [dq_out, shape_name], [out], name=base + "_Reshape"))
            dq_out = out
        if transposed:
            inverse = [perm.index(a) for a in range(w.ndim)]
            nodes.append(helper.make_node("Transpose", [dq_out], [base], perm=inverse, name=base + "_Transpose"))
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    if not targets:
        return model
    graph_inputs = [i for i in model.graph.input if i.name not in targets]  # IR < 4 lists initializers as inputs
    del model.graph.input[:]
    model.graph.input.extend(graph_inputs)
    rest = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes + rest)  # the dequantized weights come first (topological order)
    print(f"compressed {len(targets)} weights to INT8: {before / 1024:.0f} KiB -> {after / 1024:.0f} KiB", file=sys.stderr)
    return model


def quantize_symmetric(w, bits, block):
    """ONNX Runtime's QMoE weight format for w [E, rows, K]: unsigned codes q + 2^(bits-1) (two per byte
    for 4 bits, the lower index in the low nibble), scales max|w| / qmax per row or per block of K."""
    import numpy as np
    E, rows, K = w.shape
    qmax = (1 << (bits - 1)) - 1
    blocks = w.reshape(E, rows, -1, block) if block else w[:, :, None, :]
    scale = np.maximum(np.abs(blocks).max(axis=-1), 1e-8) / qmax
    q = np.clip(np.rint(blocks / scale[..., None]), -qmax - 1, qmax).astype(np.int32) + (1 << (bits - 1))
    q = q.reshape(E, rows, K).astype(np.uint8)
    if bits == 4:
        q = (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)
    return q, (scale if block else scale[..., 0]).astype(np.float32)


def moe_to_qmoe(model, bits, block=0, exclude=()):
    """Every com.microsoft.MoE node with initializer weights becomes com.microsoft.QMoE (ONNX Runtime's
    quantized MoE: symmetric INT8 / INT4 expert weights, one scale per row or per `block` inputs)."""
    import onnx
    from onnx import helper, numpy_helper
    inits = {t.name: t for t in model.graph.initializer}
    replaced, nodes, dropped = 0, [], set()
    for node in model.graph.node:
        if node.op_type != "MoE" or node.domain != "com.microsoft" or node.name in exclude or not all(
                node.input[i] in inits for i in (2, 4) if i < len(node.input)):
            nodes.append(node)
            continue
        names = list(node.input) + [""] * (8 - len(node.input))
        x, logits, fc1, b1, fc2, b2, fc3, b3 = names
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("activation_type") == "swiglu" and attrs.get("swiglu_fusion", 0) != 1:
            raise QuantizeError(f"node '{node.name}': ONNX Runtime's QMoE takes SwiGLU weights interleaved only "
                                "(swiglu_fusion=1)")
        inputs = [x, logits]
        for w, b in ((fc1, b1), (fc2, b2), (fc3, b3)):
            if not w:
                inputs += ["", "", ""]
                continue
            weights = numpy_helper.to_array(inits[w])
            if block and weights.shape[2] % block:
                raise QuantizeError(f"--block-size {block} does not divide the {weights.shape[2]} inputs of '{w}'")
            q, s = quantize_symmetric(weights, bits, block)
            model.graph.initializer.extend([numpy_helper.from_array(q, w + "_quantized"), numpy_helper.from_array(s, w + "_scales")])
            dropped.add(w)
            inputs += [w + "_quantized", w + "_scales", b]
        while inputs[-1] == "":
            inputs.pop()
        attrs["expert_weight_bits"] = bits
        if block:
            attrs["block_size"] = block
        nodes.append(helper.make_node("QMoE", inputs, list(node.output), name=node.name, domain="com.microsoft", **attrs))
        replaced += 1
    kept = [t for t in model.graph.initializer if t.name not in dropped]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    if replaced:
        print(f"{replaced} com.microsoft.MoE node(s) -> com.microsoft.QMoE, INT{bits} experts"
              f"{f', block {block}' if block else ', one scale per row'}", file=sys.stderr)
    return model


def write_atomically(path, out_dir, model, note):
    """Checks the model and writes it to `path` through a temporary file (nothing left on failure)."""
    import onnx
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=out_dir)
    os.close(fd)
    try:
        model.metadata_props.add(key="switchyard.quantized", value=note)
        try:
            onnx.checker.check_model(model)
        except Exception as e:  # noqa: BLE001
            raise QuantizeError(f"the compressed model is not valid ONNX: {str(e).splitlines()[0]}") from None
        onnx.save(model, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    print(f"wrote {path}", file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="switchyard quantize", description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--calibration", default="fashion-mnist", help="fashion-mnist, or a .npz with one array per input")
    parser.add_argument("--samples", type=int, default=512, help="calibration rows (default 512)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--method", choices=["minmax", "percentile", "entropy"], default="minmax")
    parser.add_argument("--percentile", type=float, default=99.999)
    parser.add_argument("--per-tensor", action="store_true", help="one weight scale per tensor (default: per channel)")
    parser.add_argument("--exclude-nodes", nargs="*", default=[], metavar="NAME")
    parser.add_argument("--exclude-types", nargs="*", default=[], metavar="OP")
    parser.add_argument("--quantize-router", action="store_true", help="also quantize the MoE routers")
    parser.add_argument("--uint8-activations", action="store_true", help="activations as uint8 (default int8)")
    parser.add_argument("--weights-only", action="store_true",
                        help="compress weights only, no calibration (MoE experts, MatMul/Gemm weights)")
    parser.add_argument("--bits", type=int, choices=[4, 8], default=8,
                        help="--weights-only: bits of com.microsoft.MoE experts (QMoE); other weights are INT8")
    parser.add_argument("--block-size", type=int, default=0,
                        help="--weights-only: QMoE inputs per scale (0: one scale per row; e.g. 32, 64, 128)")
    args = parser.parse_args(argv)
    try:
        run(args)
    except QuantizeError as e:
        print(f"switchyard: error: {e}", file=sys.stderr)
        return 1
    return 0


def run(args):
    if args.samples < 1 or args.batch < 1:
        raise QuantizeError("--samples and --batch must be positive")
    if not 0 < args.percentile <= 100:
        raise QuantizeError("--percentile must be in (0, 100]")
    if not os.path.isfile(args.model):
        raise QuantizeError(f"model '{args.model}' not found")
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        raise QuantizeError(f"output folder '{out_dir}' does not exist")
    import onnx
    try:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    except ImportError as e:
        raise QuantizeError(f"onnxruntime's quantization tools are missing ({e}): pip install -r requirements.txt") from None
    try:
        model = onnx.load(args.model)
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001
        raise QuantizeError(f"'{args.model}' is not a valid ONNX model: {str(e).splitlines()[0]}") from None
    names = {n.name for n in model.graph.node}
    unknown = [n for n in args.exclude_nodes if n not in names]
    if unknown:
        raise QuantizeError(f"--exclude-nodes: no node named {', '.join(repr(n) for n in unknown)} in the model")
    exclude = set(args.exclude_nodes)
    exclude |= {n.name for n in model.graph.node if n.op_type in set(args.exclude_types)}
    routers = set() if args.quantize_router else router_nodes(model)
    # By name for quantize_static's scope (an unnamed router cannot be excluded there); by index below.
    exclude |= {model.graph.node[i].name for i in routers if model.graph.node[i].name}
    if args.weights_only:
        if args.block_size < 0 or (args.block_size and args.block_size % 16):
            raise QuantizeError("--block-size must be 0 or a positive multiple of 16")
        write_atomically(args.output, out_dir, compress_weights(model, exclude, routers, args.bits, args.block_size),
                         f"int{args.bits} weights-only")
        return
    feeds = calibration_inputs(args, model)
    batch = args.batch
    if args.method != "minmax":
        # The histogram calibrators stack each tensor over batches, which fails for tensors whose
        # shape depends on the data (the rows routed to each expert): calibrate in one batch.
        batch = len(next(iter(feeds.values())))
    method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
              "entropy": CalibrationMethod.Entropy}[args.method]
    extra = {"CalibPercentile": args.percentile} if args.method == "percentile" else {}
    print(f"quantizing {args.model}: {len(next(iter(feeds.values())))} calibration rows, {args.method}, "
          f"{'per-tensor' if args.per_tensor else 'per-channel'} weights, {len(exclude)} nodes kept FP32"
          f" ({len(routers)} router nodes)", file=sys.stderr)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=out_dir)
    os.close(fd)
    try:
        with tempfile.TemporaryDirectory() as work:
            # The quantizer wants opset >= 13 for per-channel QDQ; shape-inferred copy in the scratch folder.
            source = os.path.join(work, "model.onnx")
            onnx.save(model, source)
            import logging
            logging.getLogger().setLevel(logging.ERROR)  # the quantizer's "consider pre-processing" advice
            try:
                quantize_static(source, tmp, Reader(feeds, batch), quant_format=QuantFormat.QDQ,
                                per_channel=not args.per_tensor,
                                activation_type=QuantType.QUInt8 if args.uint8_activations else QuantType.QInt8,
                                weight_type=QuantType.QInt8, calibrate_method=method, nodes_to_exclude=sorted(exclude),
                                extra_options=extra)
            except Exception as e:  # noqa: BLE001 - the quantizer's own errors, as one line
                raise QuantizeError(f"quantization failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        quantized = onnx.load(tmp)
        onnx.checker.check_model(quantized)
        del quantized.metadata_props[:]
        for prop in model.metadata_props:  # keep preprocessing and dataset hints
            quantized.metadata_props.add(key=prop.key, value=prop.value)
        quantized.metadata_props.add(key="switchyard.quantized", value=f"int8 qdq {args.method}")
        onnx.save(quantized, tmp)
        os.replace(tmp, args.output)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    q = sum(n.op_type == "QuantizeLinear" for n in onnx.load(args.output).graph.node)
    print(f"wrote {args.output}: {q} QuantizeLinear nodes", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
