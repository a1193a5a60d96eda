// Cast and CastLike between all supported numeric dtypes, bool, float16 and bfloat16.
#include <cmath>

#include "ops/op_utils.h"

namespace switchyard {

DType dtype_from_onnx_code(int64_t code);

namespace {

template <typename Dst>
Dst from_double(double v) {
  if constexpr (std::is_same_v<Dst, bool>) {
    return v != 0;
  } else if constexpr (std::is_integral_v<Dst>) {
    if (std::isnan(v)) return 0;
    return static_cast<Dst>(static_cast<int64_t>(v));
  } else {
    return static_cast<Dst>(v);
  }
}

void cast_tensor(const Tensor& x, Tensor& y, const Node& node) {
  const int64_t n = x.numel();
  DType dt = y.dtype();
  if (x.dtype() == dt) {
    if (x.nbytes()) std::memcpy(y.raw(), x.raw(), x.nbytes());
    return;
  }
  if (dt == DType::kFloat16 || dt == DType::kBFloat16) {
    auto* yp = static_cast<uint16_t*>(y.raw());
    for (int64_t i = 0; i < n; ++i) {
      float v = static_cast<float>(x.as_double(i));
      yp[i] = dt == DType::kFloat16 ? float_to_half(v) : float_to_bfloat16(v);
    }
    return;
  }
  if (dt == DType::kBool) {
    bool* yp = y.data<bool>();
    for (int64_t i = 0; i < n; ++i) yp[i] = x.as_double(i) != 0;
    return;
  }
  // int64 -> int64-like paths keep full precision (as_double would lose bits above 2^53).
  if (x.dtype() == DType::kInt64 && dt != DType::kFloat32 && dt != DType::kFloat64) {
    SY_DISPATCH_NUMERIC(dt, node.describe(), {
      T* yp = static_cast<T*>(y.raw());
      const int64_t* xp = x.data<int64_t>();
      for (int64_t i = 0; i < n; ++i) yp[i] = static_cast<T>(xp[i]);
    });
    return;
  }
  SY_DISPATCH_NUMERIC(dt, node.describe(), {
    T* yp = static_cast<T*>(y.raw());
    for (int64_t i = 0; i < n; ++i) yp[i] = from_double<T>(x.as_double(i));
  });
}

class Cast final : public Kernel {
 public:
  explicit Cast(const KernelBuildInfo& info) : node_(info.node) {
    if (node_.op_type == "Cast") {
      to_ = dtype_from_onnx_code(node_.attr_int("to", 0));
      SY_CHECK(to_ != DType::kUndefined, node_.describe() + ": unsupported target type " +
                                             std::to_string(node_.attr_int("to", 0)));
    }
  }
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    DType to = node_.op_type == "Cast" ? to_ : ctx.input(1).dtype();
    Tensor& y = ctx.output(0, to, x.shape());
    cast_tensor(x, y, node_);
  }

 private:
  const Node& node_;
  DType to_ = DType::kUndefined;
};

SY_REGISTER_OP("", "Cast", 6, make_factory<Cast>(), kOpRowsElementwise | kOpRouterPath);
SY_REGISTER_OP("", "CastLike", 15, make_factory<Cast>());

}  // namespace

DType dtype_from_onnx_code(int64_t code) {
  switch (code) {
    case 1: return DType::kFloat32;
    case 2: return DType::kUInt8;
    case 3: return DType::kInt8;
    case 4: return DType::kUInt16;
    case 5: return DType::kInt16;
    case 6: return DType::kInt32;
    case 7: return DType::kInt64;
    case 9: return DType::kBool;
    case 10: return DType::kFloat16;
    case 11: return DType::kFloat64;
    case 12: return DType::kUInt32;
    case 13: return DType::kUInt64;
    case 16: return DType::kBFloat16;
    default: return DType::kUndefined;
  }
}

}  // namespace switchyard
