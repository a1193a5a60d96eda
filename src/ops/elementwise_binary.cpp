// Broadcasting binary ops: arithmetic (Add, Sub, Mul, Div, Pow, Mod), comparisons (Equal, Less,
// Greater, LessOrEqual, GreaterOrEqual -> bool), logic (And, Or, Xor), BitShift and PRelu.
// They share one broadcasting loop (elementwise.h); each op is the functor it applies.
#include <cmath>

#include "ops/elementwise.h"

namespace switchyard {
namespace {

enum class BinOp { kAdd, kSub, kMul, kDiv, kPow, kMod, kFMod, kEqual, kLess, kGreater, kLessEq, kGreaterEq,
                   kAnd, kOr, kXor, kShiftLeft, kShiftRight, kPRelu };

bool is_comparison(BinOp op) { return op >= BinOp::kEqual && op <= BinOp::kGreaterEq; }
bool is_logic(BinOp op) { return op >= BinOp::kAnd && op <= BinOp::kXor; }

template <typename T>
T python_mod(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    T r = std::fmod(a, b);
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
  } else {
    if (b == 0) return 0;
    T r = static_cast<T>(a % b);
    if constexpr (std::is_signed_v<T>)
      if (r != 0 && ((r < 0) != (b < 0))) r = static_cast<T>(r + b);
    return r;
  }
}

template <typename T>
T int_pow(T base, double e) {
  return static_cast<T>(std::pow(static_cast<double>(base), e));
}

class Binary final : public Kernel {
 public:
  Binary(const KernelBuildInfo& info, BinOp op) : node_(info.node), op_(op) {
    if (op_ == BinOp::kMod && node_.attr_int("fmod", 0)) op_ = BinOp::kFMod;
    if (op_ == BinOp::kShiftLeft && node_.attr_string("direction", "LEFT") == "RIGHT") op_ = BinOp::kShiftRight;
  }

  void compute(KernelContext& ctx) const override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    Shape shape = broadcast_shapes(a.shape(), b.shape(), node_);
    if (op_ == BinOp::kPow) return pow(ctx, a, b, shape);
    SY_CHECK(a.dtype() == b.dtype(), node_.describe() + ": input dtypes differ (" + dtype_name(a.dtype()) + " vs " +
                                         dtype_name(b.dtype()) + ")");
    if (is_logic(op_)) {
      SY_CHECK(a.dtype() == DType::kBool, node_.describe() + ": inputs must be bool");
      Tensor& y = ctx.output(0, DType::kBool, shape);
      switch (op_) {
        case BinOp::kAnd: broadcast_binary<bool, bool, bool>(a, b, y, [](bool x, bool z) { return x && z; }); break;
        case BinOp::kOr: broadcast_binary<bool, bool, bool>(a, b, y, [](bool x, bool z) { return x || z; }); break;
        default: broadcast_binary<bool, bool, bool>(a, b, y, [](bool x, bool z) { return x != z; }); break;
      }
      return;
    }
    if (is_comparison(op_)) {
      Tensor& y = ctx.output(0, DType::kBool, shape);
      if (a.dtype() == DType::kBool) return compare<bool>(a, b, y);
      SY_DISPATCH_NUMERIC(a.dtype(), node_.describe(), compare<T>(a, b, y));
      return;
    }
    Tensor& y = ctx.output(0, a.dtype(), shape);
    SY_DISPATCH_NUMERIC(a.dtype(), node_.describe(), arithmetic<T>(a, b, y));
  }

 private:
  template <typename T>
  void compare(const Tensor& a, const Tensor& b, Tensor& y) const {
    switch (op_) {
      case BinOp::kEqual: broadcast_binary<T, T, bool>(a, b, y, [](T x, T z) { return x == z; }); break;
      case BinOp::kLess: broadcast_binary<T, T, bool>(a, b, y, [](T x, T z) { return x < z; }); break;
      case BinOp::kGreater: broadcast_binary<T, T, bool>(a, b, y, [](T x, T z) { return x > z; }); break;
      case BinOp::kLessEq: broadcast_binary<T, T, bool>(a, b, y, [](T x, T z) { return x <= z; }); break;
      default: broadcast_binary<T, T, bool>(a, b, y, [](T x, T z) { return x >= z; }); break;
    }
  }

  template <typename T>
  void arithmetic(const Tensor& a, const Tensor& b, Tensor& y) const {
    switch (op_) {
      case BinOp::kAdd: broadcast_binary<T, T, T>(a, b, y, [](T x, T z) { return static_cast<T>(x + z); }); break;
      case BinOp::kSub: broadcast_binary<T, T, T>(a, b, y, [](T x, T z) { return static_cast<T>(x - z); }); break;
      case BinOp::kMul: broadcast_binary<T, T, T>(a, b, y, [](T x, T z) { return static_cast<T>(x * z); }); break;
      case BinOp::kDiv:
        if constexpr (std::is_integral_v<T>) {
          broadcast_binary<T, T, T>(a, b, y, [](T x, T z) { return z == 0 ? T(0) : static_cast<T>(x / z); });
        } else {
          broadcast_binary<T, T, T>(a, b, y, [](T x, T z) { return x / z; });
        }
        break;
      case BinOp::kMod: broadcast_binary<T, T, T>(a, b, y, [](T x, T z) { return python_mod(x, z); }); break;
      case BinOp::kFMod:
        if constexpr (std::is_integral_v<T>) {
          broadcast_binary<T, T, T>(a, b, y, [](T x, T z) { return z == 0 ? T(0) : static_cast<T>(x % z); });
        } else {
          broadcast_binary<T, T, T>(a, b, y, [](T x, T z) { return std::fmod(x, z); });
        }
        break;
      case BinOp::kShiftLeft:
      case BinOp::kShiftRight:
        if constexpr (std::is_unsigned_v<T>) {
          if (op_ == BinOp::kShiftLeft)
            broadcast_binary<T, T, T>(a, b, y, [](T x, T z) { return z >= sizeof(T) * 8 ? T(0) : static_cast<T>(x << z); });
          else
            broadcast_binary<T, T, T>(a, b, y, [](T x, T z) { return z >= sizeof(T) * 8 ? T(0) : static_cast<T>(x >> z); });
        } else {
          throw Error(node_.describe() + ": BitShift needs unsigned integers");
        }
        break;
      case BinOp::kPRelu: broadcast_binary<T, T, T>(a, b, y, [](T x, T s) { return x < 0 ? static_cast<T>(x * s) : x; }); break;
      default: throw Error(node_.describe() + ": unexpected op");
    }
  }

  void pow(KernelContext& ctx, const Tensor& a, const Tensor& b, const Shape& shape) const {
    Tensor& y = ctx.output(0, a.dtype(), shape);
    if (a.dtype() == DType::kFloat32 && b.dtype() == DType::kFloat32) {
      if (b.numel() == 1 && b.data<float>()[0] == 2.f) {  // x^2 from LayerNorm/RMSNorm exports
        broadcast_binary<float, float, float>(a, b, y, [](float x, float) { return x * x; });
      } else {
        broadcast_binary<float, float, float>(a, b, y, [](float x, float e) { return std::pow(x, e); });
      }
      return;
    }
    // Mixed dtypes: exponent read as double.
    Tensor bd(DType::kFloat64, b.shape());
    for (int64_t i = 0; i < b.numel(); ++i) bd.data<double>()[i] = b.as_double(i);
    SY_DISPATCH_NUMERIC(a.dtype(), node_.describe(),
                        broadcast_binary<T, double, T>(a, bd, y, [](T x, double e) { return int_pow<T>(x, e); }));
  }

  const Node& node_;
  BinOp op_;
};

KernelFactory binary(BinOp op) {
  return [op](const KernelBuildInfo& info) -> std::unique_ptr<Kernel> { return std::make_unique<Binary>(info, op); };
}

SY_REGISTER_OP("", "Add", 7, binary(BinOp::kAdd), kOpRowsBroadcast | kOpRouterPath);
SY_REGISTER_OP("", "Sub", 7, binary(BinOp::kSub), kOpRowsBroadcast | kOpRouterPath);
SY_REGISTER_OP("", "Mul", 7, binary(BinOp::kMul), kOpRowsBroadcast | kOpRouterPath);
SY_REGISTER_OP("", "Div", 7, binary(BinOp::kDiv), kOpRowsBroadcast | kOpRouterPath);
SY_REGISTER_OP("", "Pow", 7, binary(BinOp::kPow), kOpRowsBroadcast);
SY_REGISTER_OP("", "Mod", 10, binary(BinOp::kMod), kOpRowsBroadcast);
SY_REGISTER_OP("", "Equal", 7, binary(BinOp::kEqual), kOpRowsBroadcast);
SY_REGISTER_OP("", "Less", 7, binary(BinOp::kLess), kOpRowsBroadcast);
SY_REGISTER_OP("", "Greater", 7, binary(BinOp::kGreater), kOpRowsBroadcast);
SY_REGISTER_OP("", "LessOrEqual", 12, binary(BinOp::kLessEq), kOpRowsBroadcast);
SY_REGISTER_OP("", "GreaterOrEqual", 12, binary(BinOp::kGreaterEq), kOpRowsBroadcast);
SY_REGISTER_OP("", "And", 7, binary(BinOp::kAnd), kOpRowsBroadcast);
SY_REGISTER_OP("", "Or", 7, binary(BinOp::kOr), kOpRowsBroadcast);
SY_REGISTER_OP("", "Xor", 7, binary(BinOp::kXor), kOpRowsBroadcast);
SY_REGISTER_OP("", "BitShift", 11, binary(BinOp::kShiftLeft));
SY_REGISTER_OP("", "PRelu", 7, binary(BinOp::kPRelu), kOpRowsBroadcast);

}  // namespace
}  // namespace switchyard
