// The protocol's datatype names ("FP32", "INT64", ...) and Switchyard's dtypes.
#pragma once

#include <string>

#include "switchyard/tensor.h"

namespace switchyard::serve {

// "FP32" for kFloat32, ...; "" for dtypes the protocol has no name for.
const char* protocol_datatype(DType dtype);
// Inverse of protocol_datatype; kUndefined for unknown names (and for BYTES, which Switchyard cannot feed).
DType dtype_from_protocol(const std::string& name);

}  // namespace switchyard::serve
