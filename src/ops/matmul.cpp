// ONNX MatMul with NumPy semantics (batched, broadcast batch dims, 1-D operands). FP32, or with a
// constant 2-D B at the compile precision or, at FP32, on the panels where they beat oneDNN for this
// shape (kernels/dense_linear.h).
#include "kernels/dense_linear.h"
#include "kernels/gemm_kernel.h"
#include "ops/op_utils.h"

namespace switchyard {
namespace {

class MatMul final : public Kernel {
 public:
  explicit MatMul(const KernelBuildInfo& info)
      : node_(info.node),
        dense_(DenseLinear::make(info.constant_inputs.size() > 1 ? info.constant_inputs[1] : nullptr, false, info.precision,
                                 info.weight_group)) {}

  std::string kernel_choice() const override { return dense_ ? dense_->choice() : ""; }

  void compute(KernelContext& ctx) const override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    SY_CHECK(a.dtype() == DType::kFloat32 && b.dtype() == DType::kFloat32,
             node_.describe() + ": only float32 is supported, got " + dtype_name(a.dtype()));
    SY_CHECK(a.rank() >= 1 && b.rank() >= 1, node_.describe() + ": operands must have rank >= 1");
    Shape as = a.shape(), bs = b.shape();
    if (as.size() == 1) as.insert(as.begin(), 1);
    if (bs.size() == 1) bs.push_back(1);
    const int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
    SY_CHECK(bs[bs.size() - 2] == K, node_.describe() + ": inner dimensions differ: " + shape_str(a.shape()) + " x " +
                                         shape_str(b.shape()));
    Shape a_batch(as.begin(), as.end() - 2), b_batch(bs.begin(), bs.end() - 2);
    Shape batch = broadcast_shapes(a_batch, b_batch, node_);
    Shape out = batch;
    if (a.rank() > 1) out.push_back(M);
    if (b.rank() > 1) out.push_back(N);
    Tensor& y = ctx.output(0, DType::kFloat32, out);
    const float* ap = a.data<float>();
    const float* bp = b.data<float>();
    float* yp = y.data<float>();
    const int64_t nbatch = checked_numel(batch);
    if (dense_ && b.rank() == 2 && dense_->use_for(checked_numel(batch) * M)) {  // batch folded into rows, B prepacked
      const int64_t rows = checked_numel(batch) * M;
      dense_->run(rows, ap, yp, ctx.scratch(dense_->scratch_bytes(rows)), ctx.pool());
      return;
    }
    if (b_batch.empty() || checked_numel(b_batch) == 1) {
      if (checked_numel(a_batch) == nbatch) {  // one big GEMM: fold A's batch into rows
        sgemm(false, nbatch * M, N, K, 1.f, ap, K, bp, N, 0.f, yp, N, &ctx.pool());
        return;
      }
    }
    auto sa = broadcast_strides(a_batch, batch), sb = broadcast_strides(b_batch, batch);
    std::vector<int64_t> idx(batch.size(), 0);
    for (int64_t n = 0; n < nbatch; ++n) {
      int64_t oa = 0, ob = 0, rem = n;
      for (size_t d = batch.size(); d-- > 0;) {
        int64_t i = rem % batch[d];
        rem /= batch[d];
        oa += i * sa[d];
        ob += i * sb[d];
      }
      sgemm(false, M, N, K, 1.f, ap + oa * M * K, K, bp + ob * K * N, N, 0.f, yp + n * M * N, N, &ctx.pool());
    }
  }

 private:
  const Node& node_;
  std::optional<DenseLinear> dense_;
};

SY_REGISTER_OP("", "MatMul", 1, make_factory<MatMul>());

}  // namespace
}  // namespace switchyard
