#include "core/precision.h"

#include "switchyard/error.h"

namespace switchyard {

Precision parse_precision(const std::string& p) {
  if (p == "fp32" || p.empty()) return Precision::kFp32;
  if (p == "fp16") return Precision::kFp16;
  if (p == "bf16") return Precision::kBf16;
  if (p == "int8") return Precision::kInt8;
  if (p == "int4") return Precision::kInt4;
  if (p == "int8-weights") return Precision::kInt8Weights;
  if (p == "int4-weights") return Precision::kInt4Weights;
  throw Error("precision '" + p + "' is not supported (fp32, fp16, bf16, int8, int4, int8-weights, int4-weights)");
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::kFp32: return "fp32";
    case Precision::kFp16: return "fp16";
    case Precision::kBf16: return "bf16";
    case Precision::kInt8: return "int8";
    case Precision::kInt4: return "int4";
    case Precision::kInt8Weights: return "int8-weights";
    case Precision::kInt4Weights: return "int4-weights";
  }
  return "fp32";
}

}  // namespace switchyard
