#include "server/datatype.h"

#include <utility>

namespace switchyard::serve {
namespace {
constexpr std::pair<DType, const char*> kNames[] = {
    {DType::kFloat32, "FP32"}, {DType::kFloat16, "FP16"}, {DType::kBFloat16, "BF16"}, {DType::kFloat64, "FP64"},
    {DType::kInt64, "INT64"},  {DType::kInt32, "INT32"},   {DType::kInt16, "INT16"},   {DType::kInt8, "INT8"},
    {DType::kUInt8, "UINT8"},  {DType::kUInt16, "UINT16"}, {DType::kUInt32, "UINT32"}, {DType::kUInt64, "UINT64"},
    {DType::kBool, "BOOL"},
};
}  // namespace

const char* protocol_datatype(DType dtype) {
  for (const auto& [d, name] : kNames)
    if (d == dtype) return name;
  return "";
}

DType dtype_from_protocol(const std::string& name) {
  for (const auto& [d, n] : kNames)
    if (name == n) return d;
  return DType::kUndefined;
}

}  // namespace switchyard::serve
