// Reductions: ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp. Axes come from the
// attribute before the opset that moved them to an input (13 for ReduceSum, 18 for the rest).
// Accumulates in double so float32 sums over long axes stay accurate.
#include <cmath>
#include <limits>

#include "ops/op_utils.h"

namespace switchyard {
namespace {

class Reduce final : public Kernel {
 public:
  explicit Reduce(const KernelBuildInfo& info) : node_(info.node) {
    const std::string& op = node_.op_type;
    axes_as_input_ = node_.opset >= (op == "ReduceSum" ? 13 : 18);
    keepdims_ = node_.attr_int("keepdims", 1) != 0;
    noop_empty_ = node_.attr_int("noop_with_empty_axes", 0) != 0;
  }

  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const int64_t r = x.rank();
    std::vector<int64_t> axes = axes_as_input_ ? (ctx.has_input(1) ? read_int_list(ctx.input(1)) : std::vector<int64_t>{})
                                               : node_.attr_ints("axes");
    std::vector<bool> reduced(static_cast<size_t>(r), false);
    if (axes.empty()) {
      if (noop_empty_) {
        Tensor& y = ctx.output(0, x.dtype(), x.shape());
        if (x.nbytes()) std::memcpy(y.raw(), x.raw(), x.nbytes());
        return;
      }
      reduced.assign(static_cast<size_t>(r), true);
    }
    for (int64_t a : axes) reduced[static_cast<size_t>(normalize_axis(a, r, node_))] = true;
    Shape out, kept;
    for (int64_t d = 0; d < r; ++d) {
      if (reduced[static_cast<size_t>(d)]) {
        if (keepdims_) out.push_back(1);
      } else {
        out.push_back(x.dim(d));
      }
    }
    // Output strides in input-dim order (0 on reduced dims).
    std::vector<int64_t> ostride(static_cast<size_t>(r), 0);
    int64_t s = 1;
    for (int64_t d = r - 1; d >= 0; --d)
      if (!reduced[static_cast<size_t>(d)]) {
        ostride[static_cast<size_t>(d)] = s;
        s *= x.dim(d);
      }
    const int64_t out_n = s;
    int64_t group = 1;
    for (int64_t d = 0; d < r; ++d)
      if (reduced[static_cast<size_t>(d)]) group *= x.dim(d);
    const std::string& op = node_.op_type;
    double init = 0;
    if (op == "ReduceProd") init = 1;
    if (op == "ReduceMax") init = -std::numeric_limits<double>::infinity();
    if (op == "ReduceMin") init = std::numeric_limits<double>::infinity();
    if (op == "ReduceLogSumExp") init = -std::numeric_limits<double>::infinity();
    std::vector<double> acc(static_cast<size_t>(out_n), init);
    // LogSumExp: first pass max for stability.
    for_each_strided(x.shape(), ostride, 0, [&](int64_t i, int64_t off) {
      double v = x.as_double(i);
      double& a = acc[static_cast<size_t>(off)];
      if (op == "ReduceSum" || op == "ReduceMean" || op == "ReduceLogSum") a += v;
      else if (op == "ReduceMax") a = (v > a || std::isnan(v)) ? v : a;
      else if (op == "ReduceMin") a = (v < a || std::isnan(v)) ? v : a;
      else if (op == "ReduceProd") a *= v;
      else if (op == "ReduceL1") a += std::fabs(v);
      else if (op == "ReduceL2" || op == "ReduceSumSquare") a += v * v;
      else a = std::max(a, v);  // LogSumExp pass 1
    });
    if (op == "ReduceLogSumExp") {
      std::vector<double> sum(acc.size(), 0.0);
      for_each_strided(x.shape(), ostride, 0, [&](int64_t i, int64_t off) {
        double m = acc[static_cast<size_t>(off)];
        sum[static_cast<size_t>(off)] += std::exp(x.as_double(i) - (std::isinf(m) ? 0 : m));
      });
      for (size_t i = 0; i < acc.size(); ++i) acc[i] = (std::isinf(acc[i]) ? 0 : acc[i]) + std::log(sum[i]);
    }
    for (double& a : acc) {
      if (op == "ReduceMean") a = group ? a / static_cast<double>(group) : std::nan("");
      else if (op == "ReduceL2") a = std::sqrt(a);
      else if (op == "ReduceLogSum") a = std::log(a);
    }
    Tensor& y = ctx.output(0, x.dtype(), out);
    SY_DISPATCH_NUMERIC(x.dtype(), node_.describe(), {
      T* yp = static_cast<T*>(y.raw());
      for (int64_t i = 0; i < out_n; ++i) {
        double a = acc[static_cast<size_t>(i)];
        if constexpr (std::is_integral_v<T>) {
          if (std::isinf(a)) a = a > 0 ? static_cast<double>(std::numeric_limits<T>::max())
                                       : static_cast<double>(std::numeric_limits<T>::lowest());
        }
        yp[i] = static_cast<T>(a);
      }
    });
  }

 private:
  const Node& node_;
  bool axes_as_input_, keepdims_, noop_empty_;
};

SY_REGISTER_OP("", "ReduceSum", 1, make_factory<Reduce>());
SY_REGISTER_OP("", "ReduceMean", 1, make_factory<Reduce>());
SY_REGISTER_OP("", "ReduceMax", 1, make_factory<Reduce>());
SY_REGISTER_OP("", "ReduceMin", 1, make_factory<Reduce>());
SY_REGISTER_OP("", "ReduceProd", 1, make_factory<Reduce>());
SY_REGISTER_OP("", "ReduceL1", 1, make_factory<Reduce>());
SY_REGISTER_OP("", "ReduceL2", 1, make_factory<Reduce>());
SY_REGISTER_OP("", "ReduceSumSquare", 1, make_factory<Reduce>());
SY_REGISTER_OP("", "ReduceLogSum", 1, make_factory<Reduce>());
SY_REGISTER_OP("", "ReduceLogSumExp", 1, make_factory<Reduce>());

}  // namespace
}  // namespace switchyard
