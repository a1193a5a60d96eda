// ONNX -> Switchyard IR. Parses with the protobuf classes of Debian's libonnx.
#pragma once

#include <string>

#include "graph/graph.h"

namespace onnx {
class TensorProto;
}

namespace switchyard {

// Highest default-domain opset Switchyard accepts.
constexpr int kMaxOnnxOpset = 21;

// Loads a model file; external data files are resolved relative to (and confined to) its folder.
Model load_onnx_file(const std::string& path);
// Loads a serialized model; `base_dir` is the folder for external data ("" refuses external data).
Model load_onnx_bytes(const std::string& bytes, const std::string& base_dir, const std::string& what);

// Converts one TensorProto (raw_data, typed fields or external data) into a tensor.
Tensor tensor_from_proto(const onnx::TensorProto& proto, const std::string& base_dir);
// Reads a serialized TensorProto file (the ONNX test-data .pb format).
Tensor load_tensor_pb(const std::string& path);

}  // namespace switchyard
