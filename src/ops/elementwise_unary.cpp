// Element-wise unary math and activations. One functor each over the shared map loop; float ops
// accept float32/float64, sign-agnostic ones (Neg, Abs, Sign) also integers.
#include <cmath>

#include "ops/elementwise.h"

namespace switchyard {
namespace {

enum class UnOp { kRelu, kSigmoid, kTanh, kExp, kLog, kSqrt, kNeg, kAbs, kErf, kReciprocal, kFloor, kCeil,
                  kRound, kSign, kSin, kCos, kSoftplus, kSoftsign, kLeakyRelu, kElu, kSelu, kHardSigmoid,
                  kHardSwish, kGelu, kMish, kCelu, kThresholdedRelu, kAcos, kAsin, kAtan, kTan, kSinh, kCosh,
                  kAsinh, kAcosh, kAtanh };

bool works_on_ints(UnOp op) { return op == UnOp::kNeg || op == UnOp::kAbs || op == UnOp::kSign || op == UnOp::kRelu; }

class Unary final : public Kernel {
 public:
  Unary(const KernelBuildInfo& info, UnOp op) : node_(info.node), op_(op) {
    alpha_ = node_.attr_float("alpha", op == UnOp::kLeakyRelu ? 0.01f
                                       : op == UnOp::kSelu    ? 1.67326319217681884765625f
                                       : op == UnOp::kHardSigmoid ? 0.2f
                                       : 1.0f);
    beta_ = node_.attr_float("beta", 0.5f);
    gamma_ = node_.attr_float("gamma", 1.05070102214813232421875f);
    gelu_tanh_ = node_.attr_string("approximate", "none") == "tanh";
  }

  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    if (x.dtype() == DType::kFloat32) return apply<float>(x, y, ctx);
    if (x.dtype() == DType::kFloat64) return apply<double>(x, y, ctx);
    SY_CHECK(works_on_ints(op_), node_.describe() + ": unsupported dtype " + dtype_name(x.dtype()));
    SY_DISPATCH_NUMERIC(x.dtype(), node_.describe(), apply_int<T>(x, y, ctx));
  }

 private:
  template <typename T>
  void apply_int(const Tensor& x, Tensor& y, KernelContext& ctx) const {
    switch (op_) {
      case UnOp::kNeg: unary_map<T, T>(x, y, ctx.pool(), [](T v) { return static_cast<T>(-v); }); break;
      case UnOp::kAbs:
        unary_map<T, T>(x, y, ctx.pool(), [](T v) { if constexpr (std::is_signed_v<T>) return static_cast<T>(v < 0 ? -v : v); else return v; });
        break;
      case UnOp::kRelu: unary_map<T, T>(x, y, ctx.pool(), [](T v) { return v > 0 ? v : T(0); }); break;
      default: unary_map<T, T>(x, y, ctx.pool(), [](T v) { return static_cast<T>((v > 0) - (v < 0)); }); break;
    }
  }

  template <typename T>
  void apply(const Tensor& x, Tensor& y, KernelContext& ctx) const {
    const T a = static_cast<T>(alpha_), b = static_cast<T>(beta_), g = static_cast<T>(gamma_);
    auto run = [&](auto f) { unary_map<T, T>(x, y, ctx.pool(), f); };
    switch (op_) {
      case UnOp::kRelu: run([](T v) { return v > 0 ? v : T(0); }); break;
      case UnOp::kSigmoid: run([](T v) { return T(1) / (T(1) + std::exp(-v)); }); break;
      case UnOp::kTanh: run([](T v) { return std::tanh(v); }); break;
      case UnOp::kExp: run([](T v) { return std::exp(v); }); break;
      case UnOp::kLog: run([](T v) { return std::log(v); }); break;
      case UnOp::kSqrt: run([](T v) { return std::sqrt(v); }); break;
      case UnOp::kNeg: run([](T v) { return -v; }); break;
      case UnOp::kAbs: run([](T v) { return std::fabs(v); }); break;
      case UnOp::kErf: run([](T v) { return std::erf(v); }); break;
      case UnOp::kReciprocal: run([](T v) { return T(1) / v; }); break;
      case UnOp::kFloor: run([](T v) { return std::floor(v); }); break;
      case UnOp::kCeil: run([](T v) { return std::ceil(v); }); break;
      case UnOp::kRound: run([](T v) { return std::nearbyint(v); }); break;  // ties to even
      case UnOp::kSign: run([](T v) { return static_cast<T>((v > 0) - (v < 0)); }); break;
      case UnOp::kSin: run([](T v) { return std::sin(v); }); break;
      case UnOp::kCos: run([](T v) { return std::cos(v); }); break;
      case UnOp::kTan: run([](T v) { return std::tan(v); }); break;
      case UnOp::kAsin: run([](T v) { return std::asin(v); }); break;
      case UnOp::kAcos: run([](T v) { return std::acos(v); }); break;
      case UnOp::kAtan: run([](T v) { return std::atan(v); }); break;
      case UnOp::kSinh: run([](T v) { return std::sinh(v); }); break;
      case UnOp::kCosh: run([](T v) { return std::cosh(v); }); break;
      case UnOp::kAsinh: run([](T v) { return std::asinh(v); }); break;
      case UnOp::kAcosh: run([](T v) { return std::acosh(v); }); break;
      case UnOp::kAtanh: run([](T v) { return std::atanh(v); }); break;
      // log1p(exp(v)) overflows for large v; softplus(v) ~= v there.
      case UnOp::kSoftplus: run([](T v) { return v > T(30) ? v : std::log1p(std::exp(v)); }); break;
      case UnOp::kSoftsign: run([](T v) { return v / (T(1) + std::fabs(v)); }); break;
      case UnOp::kLeakyRelu: run([a](T v) { return v < 0 ? a * v : v; }); break;
      case UnOp::kElu: run([a](T v) { return v < 0 ? a * (std::exp(v) - T(1)) : v; }); break;
      case UnOp::kCelu: run([a](T v) { return std::max(T(0), v) + std::min(T(0), a * (std::exp(v / a) - T(1))); }); break;
      case UnOp::kSelu: run([a, g](T v) { return v <= 0 ? g * (a * std::exp(v) - a) : g * v; }); break;
      case UnOp::kThresholdedRelu: run([a](T v) { return v > a ? v : T(0); }); break;
      case UnOp::kHardSigmoid: run([a, b](T v) { return std::max(T(0), std::min(T(1), a * v + b)); }); break;
      case UnOp::kHardSwish: run([](T v) { return v * std::max(T(0), std::min(T(1), v / T(6) + T(0.5))); }); break;
      case UnOp::kMish: run([](T v) { return v * std::tanh(v > T(30) ? v : std::log1p(std::exp(v))); }); break;
      case UnOp::kGelu:
        if (gelu_tanh_) {
          run([](T v) { return T(0.5) * v * (T(1) + std::tanh(T(0.7978845608028654) * (v + T(0.044715) * v * v * v))); });
        } else {
          run([](T v) { return T(0.5) * v * (T(1) + std::erf(v * T(0.7071067811865476))); });
        }
        break;
    }
  }

  const Node& node_;
  UnOp op_;
  float alpha_, beta_, gamma_;
  bool gelu_tanh_;
};

KernelFactory unary(UnOp op) {
  return [op](const KernelBuildInfo& info) -> std::unique_ptr<Kernel> { return std::make_unique<Unary>(info, op); };
}

SY_REGISTER_OP("", "Relu", 6, unary(UnOp::kRelu), kOpRowsElementwise | kOpNonNegative);
SY_REGISTER_OP("", "Sigmoid", 6, unary(UnOp::kSigmoid), kOpRowsElementwise | kOpRouterPath | kOpNonNegative);
SY_REGISTER_OP("", "Tanh", 6, unary(UnOp::kTanh), kOpRowsElementwise);
SY_REGISTER_OP("", "Exp", 6, unary(UnOp::kExp), kOpRowsElementwise | kOpNonNegative);
SY_REGISTER_OP("", "Log", 6, unary(UnOp::kLog), kOpRowsElementwise);
SY_REGISTER_OP("", "Sqrt", 6, unary(UnOp::kSqrt), kOpRowsElementwise | kOpNonNegative);
SY_REGISTER_OP("", "Neg", 6, unary(UnOp::kNeg), kOpRowsElementwise);
SY_REGISTER_OP("", "Abs", 6, unary(UnOp::kAbs), kOpRowsElementwise | kOpNonNegative);
SY_REGISTER_OP("", "Erf", 9, unary(UnOp::kErf), kOpRowsElementwise);
SY_REGISTER_OP("", "Reciprocal", 6, unary(UnOp::kReciprocal), kOpRowsElementwise);
SY_REGISTER_OP("", "Floor", 6, unary(UnOp::kFloor), kOpRowsElementwise);
SY_REGISTER_OP("", "Ceil", 6, unary(UnOp::kCeil), kOpRowsElementwise);
SY_REGISTER_OP("", "Round", 11, unary(UnOp::kRound), kOpRowsElementwise);
SY_REGISTER_OP("", "Sign", 9, unary(UnOp::kSign), kOpRowsElementwise);
SY_REGISTER_OP("", "Sin", 7, unary(UnOp::kSin), kOpRowsElementwise);
SY_REGISTER_OP("", "Cos", 7, unary(UnOp::kCos), kOpRowsElementwise);
SY_REGISTER_OP("", "Tan", 7, unary(UnOp::kTan), kOpRowsElementwise);
SY_REGISTER_OP("", "Asin", 7, unary(UnOp::kAsin), kOpRowsElementwise);
SY_REGISTER_OP("", "Acos", 7, unary(UnOp::kAcos), kOpRowsElementwise);
SY_REGISTER_OP("", "Atan", 7, unary(UnOp::kAtan), kOpRowsElementwise);
SY_REGISTER_OP("", "Sinh", 9, unary(UnOp::kSinh), kOpRowsElementwise);
SY_REGISTER_OP("", "Cosh", 9, unary(UnOp::kCosh), kOpRowsElementwise);
SY_REGISTER_OP("", "Asinh", 9, unary(UnOp::kAsinh), kOpRowsElementwise);
SY_REGISTER_OP("", "Acosh", 9, unary(UnOp::kAcosh), kOpRowsElementwise);
SY_REGISTER_OP("", "Atanh", 9, unary(UnOp::kAtanh), kOpRowsElementwise);
SY_REGISTER_OP("", "Softplus", 1, unary(UnOp::kSoftplus), kOpRowsElementwise);
SY_REGISTER_OP("", "Softsign", 1, unary(UnOp::kSoftsign), kOpRowsElementwise);
SY_REGISTER_OP("", "LeakyRelu", 6, unary(UnOp::kLeakyRelu), kOpRowsElementwise);
SY_REGISTER_OP("", "Elu", 6, unary(UnOp::kElu), kOpRowsElementwise);
SY_REGISTER_OP("", "Celu", 12, unary(UnOp::kCelu), kOpRowsElementwise);
SY_REGISTER_OP("", "Selu", 6, unary(UnOp::kSelu), kOpRowsElementwise);
SY_REGISTER_OP("", "ThresholdedRelu", 10, unary(UnOp::kThresholdedRelu), kOpRowsElementwise);
SY_REGISTER_OP("", "HardSigmoid", 6, unary(UnOp::kHardSigmoid), kOpRowsElementwise);
SY_REGISTER_OP("", "HardSwish", 14, unary(UnOp::kHardSwish), kOpRowsElementwise);
SY_REGISTER_OP("", "Mish", 18, unary(UnOp::kMish), kOpRowsElementwise);
SY_REGISTER_OP("", "Gelu", 20, unary(UnOp::kGelu), kOpRowsElementwise);

}  // namespace
}  // namespace switchyard
