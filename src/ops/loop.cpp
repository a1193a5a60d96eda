// Loop: body(iteration, cond, carried...) -> (cond, carried..., scan outputs...) until the trip
// count M is reached or cond turns false. Scan outputs are stacked along a new axis 0.
#include <cstring>
#include <limits>

#include "ops/op_utils.h"

namespace switchyard {
namespace {

// A hostile trip count (or a condition that never turns false) must not hang a service.
constexpr int64_t kMaxIterations = 1000000;

class Loop final : public Kernel {
 public:
  explicit Loop(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const int64_t max_trip = ctx.has_input(0) ? ctx.input(0).as_int64(0) : std::numeric_limits<int64_t>::max();
    bool cond = ctx.has_input(1) ? ctx.input(1).as_double(0) != 0 : true;
    const int num_carried = ctx.num_inputs() - 2;
    std::vector<Tensor> carried;
    for (int i = 0; i < num_carried; ++i) carried.push_back(ctx.input(2 + i).clone());
    const int num_scan = ctx.num_outputs() - num_carried;
    SY_CHECK(num_scan >= 0, node_.describe() + ": more loop-carried inputs than outputs");
    std::vector<std::vector<Tensor>> scans(static_cast<size_t>(num_scan));
    Tensor iter(DType::kInt64, {}), cond_t(DType::kBool, {});
    int64_t i = 0;
    for (; i < max_trip && cond; ++i) {
      SY_CHECK(i < kMaxIterations, node_.describe() + ": more than " + std::to_string(kMaxIterations) +
                                       " iterations (the limit for one Loop)");
      iter.data<int64_t>()[0] = i;
      cond_t.data<bool>()[0] = cond;
      std::vector<const Tensor*> ins{&iter, &cond_t};
      for (auto& c : carried) ins.push_back(&c);
      std::vector<Tensor> outs = ctx.run_subgraph("body", ins);
      SY_CHECK(static_cast<int>(outs.size()) == 1 + num_carried + num_scan, node_.describe() + ": body output count mismatch");
      cond = outs[0].as_double(0) != 0;
      for (int k = 0; k < num_carried; ++k) carried[static_cast<size_t>(k)] = outs[static_cast<size_t>(1 + k)].clone();
      for (int k = 0; k < num_scan; ++k) scans[static_cast<size_t>(k)].push_back(outs[static_cast<size_t>(1 + num_carried + k)].clone());
    }
    for (int k = 0; k < num_carried; ++k) {
      const Tensor& c = carried[static_cast<size_t>(k)];
      if (c.dtype() == DType::kSequence) {  // a loop-carried sequence (a list appended to in the loop)
        ctx.set_output(k, c);
        continue;
      }
      Tensor& y = ctx.output(k, c.dtype(), c.shape());
      if (c.nbytes()) std::memcpy(y.raw(), c.raw(), c.nbytes());
    }
    for (int k = 0; k < num_scan; ++k) {
      auto& parts = scans[static_cast<size_t>(k)];
      Shape s{static_cast<int64_t>(parts.size())};
      DType dt = DType::kFloat32;
      if (!parts.empty()) {
        s.insert(s.end(), parts[0].shape().begin(), parts[0].shape().end());
        dt = parts[0].dtype();
      }
      Tensor& y = ctx.output(num_carried + k, dt, s);
      size_t off = 0;
      for (auto& p : parts) {
        SY_CHECK(p.shape() == parts[0].shape(), node_.describe() + ": scan output shape changes between iterations");
        std::memcpy(static_cast<char*>(y.raw()) + off, p.raw(), p.nbytes());
        off += p.nbytes();
      }
    }
  }
  const Node& node_;
};

SY_REGISTER_OP("", "Loop", 1, make_factory<Loop>());

}  // namespace
}  // namespace switchyard
