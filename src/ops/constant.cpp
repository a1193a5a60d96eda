// Constant (value / value_float(s) / value_int(s)) and ConstantOfShape.
#include <cstring>

#include "ops/op_utils.h"

namespace switchyard {
namespace {

class Constant final : public Kernel {
 public:
  explicit Constant(const KernelBuildInfo& info) {
    const Node& n = info.node;
    if (const Tensor* t = n.attr_tensor("value")) {
      value_ = t->clone();
    } else if (n.has("value_float")) {
      value_ = Tensor(DType::kFloat32, {});
      value_.data<float>()[0] = n.attr_float("value_float", 0);
    } else if (n.has("value_int")) {
      value_ = Tensor(DType::kInt64, {});
      value_.data<int64_t>()[0] = n.attr_int("value_int", 0);
    } else if (n.has("value_floats")) {
      auto v = n.attr_floats("value_floats");
      value_ = Tensor(DType::kFloat32, {static_cast<int64_t>(v.size())});
      if (!v.empty()) std::memcpy(value_.raw(), v.data(), v.size() * 4);
    } else if (n.has("value_ints")) {
      auto v = n.attr_ints("value_ints");
      value_ = Tensor(DType::kInt64, {static_cast<int64_t>(v.size())});
      if (!v.empty()) std::memcpy(value_.raw(), v.data(), v.size() * 8);
    } else {
      throw Error(n.describe() + ": no supported value attribute (sparse and string constants are not supported)");
    }
  }
  void compute(KernelContext& ctx) const override {
    Tensor& y = ctx.output(0, value_.dtype(), value_.shape());
    if (value_.nbytes()) std::memcpy(y.raw(), value_.raw(), value_.nbytes());
  }
  Tensor value_;
};

class ConstantOfShape final : public Kernel {
 public:
  explicit ConstantOfShape(const KernelBuildInfo& info) : node_(info.node) {
    if (const Tensor* t = node_.attr_tensor("value")) {
      SY_CHECK(t->numel() == 1, node_.describe() + ": value must hold one element");
      value_ = t->clone();
    } else {
      value_ = Tensor(DType::kFloat32, {1});
    }
  }
  void compute(KernelContext& ctx) const override {
    Shape shape = read_int_list(ctx.input(0));
    Tensor& y = ctx.output(0, value_.dtype(), shape);
    SY_DISPATCH_BYTES(value_.dtype(), node_.describe(), {
      T v;
      std::memcpy(&v, value_.raw(), sizeof(T));
      T* yp = static_cast<T*>(y.raw());
      for (int64_t i = 0; i < y.numel(); ++i) yp[i] = v;
    });
  }
  const Node& node_;
  Tensor value_;
};

SY_REGISTER_OP("", "Constant", 1, make_factory<Constant>());
SY_REGISTER_OP("", "ConstantOfShape", 9, make_factory<ConstantOfShape>());

}  // namespace
}  // namespace switchyard
