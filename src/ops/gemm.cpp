// ONNX Gemm: Y = alpha * A' * B' + beta * C (FP32). A constant B is prepacked at compile time, for
// FP32 sgemm or, at another compile precision, for the panel kernels (kernels/dense_linear.h).
#include "kernels/dense_linear.h"
#include "kernels/gemm_kernel.h"
#include "ops/op_utils.h"

namespace switchyard {
namespace {

class Gemm final : public Kernel {
 public:
  explicit Gemm(const KernelBuildInfo& info) : node_(info.node) {
    alpha_ = node_.attr_float("alpha", 1.f);
    beta_ = node_.attr_float("beta", 1.f);
    trans_a_ = node_.attr_int("transA", 0) != 0;
    trans_b_ = node_.attr_int("transB", 0) != 0;
    const Tensor* b = info.constant_inputs.size() > 1 ? info.constant_inputs[1] : nullptr;
    if (!trans_a_) dense_ = DenseLinear::make(b, trans_b_, info.precision, info.weight_group);
    if (b && b->dtype() == DType::kFloat32 && b->rank() == 2 && (!dense_ || !dense_->always())) {
      // Prepack B as row-major [K, N] so the kernel streams it.
      packed_b_ = trans_b_ ? Tensor(DType::kFloat32, {b->dim(1), b->dim(0)}) : b->clone();
      if (trans_b_) transpose_matrix(b->data<float>(), b->dim(0), b->dim(1), packed_b_.data<float>());
    }
  }

  std::string kernel_choice() const override { return dense_ ? dense_->choice() : ""; }

  void compute(KernelContext& ctx) const override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    SY_CHECK(a.dtype() == DType::kFloat32 && b.dtype() == DType::kFloat32,
             node_.describe() + ": only float32 is supported, got " + dtype_name(a.dtype()));
    SY_CHECK(a.rank() == 2 && b.rank() == 2, node_.describe() + ": A and B must be 2-D, got " + shape_str(a.shape()) +
                                                 " and " + shape_str(b.shape()));
    const int64_t M = trans_a_ ? a.dim(1) : a.dim(0), K = trans_a_ ? a.dim(0) : a.dim(1);
    const int64_t Kb = trans_b_ ? b.dim(1) : b.dim(0), N = trans_b_ ? b.dim(0) : b.dim(1);
    SY_CHECK(K == Kb, node_.describe() + ": inner dimensions differ: A " + shape_str(a.shape()) + ", B " +
                          shape_str(b.shape()));
    Tensor scratch_b;
    const float* bp = nullptr;
    const bool panels = dense_ && dense_->use_for(M);
    if (panels) {
      // prepacked for the panel kernels (below)
    } else if (packed_b_.defined()) {
      bp = packed_b_.data<float>();
    } else if (trans_b_) {
      scratch_b = Tensor(DType::kFloat32, {K, N});
      transpose_matrix(b.data<float>(), N, K, scratch_b.data<float>());
      bp = scratch_b.data<float>();
    } else {
      bp = b.data<float>();
    }
    Tensor& y = ctx.output(0, DType::kFloat32, {M, N});
    float beta = 0.f;
    if (ctx.has_input(2) && beta_ != 0.f) {
      const Tensor& c = ctx.input(2);
      SY_CHECK(c.dtype() == DType::kFloat32, node_.describe() + ": C must be float32");
      Shape out{M, N};
      Shape bs = broadcast_shapes(c.shape(), out, node_);
      SY_CHECK(bs == out, node_.describe() + ": C " + shape_str(c.shape()) + " does not broadcast to " + shape_str(out));
      auto st = broadcast_strides(c.shape(), out);
      const float* cp = c.data<float>();
      float* yp = y.data<float>();
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) yp[i * N + j] = cp[i * st[0] + j * st[1]];
      beta = beta_;
    }
    if (panels) {
      // The panel kernels write A B; alpha and beta C (copied into Y above) are applied after.
      SY_CHECK(K == dense_->K() && N == dense_->N(), node_.describe() + ": B does not match its prepacked shape");
      float* yp = y.data<float>();
      if (alpha_ == 1.f && beta == 0.f) {
        dense_->run(M, a.data<float>(), yp, ctx.scratch(dense_->scratch_bytes(M)), ctx.pool());
        return;
      }
      const size_t rows_bytes = (dense_->scratch_bytes(M) + 63) / 64 * 64;
      auto* base = static_cast<char*>(ctx.scratch(rows_bytes + static_cast<size_t>(M * N) * sizeof(float)));
      auto* ab = reinterpret_cast<float*>(base + rows_bytes);
      dense_->run(M, a.data<float>(), ab, base, ctx.pool());
      for (int64_t i = 0; i < M * N; ++i) yp[i] = alpha_ * ab[i] + beta * yp[i];
      return;
    }
    sgemm(trans_a_, M, N, K, alpha_, a.data<float>(), a.dim(1), bp, N, beta, y.data<float>(), N, &ctx.pool());
  }

 private:
  const Node& node_;
  float alpha_, beta_;
  bool trans_a_, trans_b_;
  Tensor packed_b_;
  std::optional<DenseLinear> dense_;  // B prepacked for a precision other than FP32
};

SY_REGISTER_OP("", "Gemm", 1, make_factory<Gemm>());

}  // namespace
}  // namespace switchyard
