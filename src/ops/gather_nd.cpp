// GatherND with batch_dims.
#include <cstring>

#include "ops/op_utils.h"

namespace switchyard {
namespace {

class GatherND final : public Kernel {
 public:
  explicit GatherND(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const Tensor& idx = ctx.input(1);
    const int64_t b = node_.attr_int("batch_dims", 0);
    SY_CHECK(idx.rank() >= 1 && b >= 0 && b < std::min(x.rank(), idx.rank()), node_.describe() + ": invalid ranks / batch_dims");
    const int64_t q = idx.dim(-1);
    SY_CHECK(q >= 1 && b + q <= x.rank(), node_.describe() + ": index depth " + std::to_string(q) + " too large for data " +
                                              shape_str(x.shape()));
    for (int64_t d = 0; d < b; ++d) SY_CHECK(x.dim(d) == idx.dim(d), node_.describe() + ": batch dims differ");
    Shape out(idx.shape().begin(), idx.shape().end() - 1);
    out.insert(out.end(), x.shape().begin() + b + q, x.shape().end());
    Tensor& y = ctx.output(0, x.dtype(), out);
    const int64_t batch = rows_of(x.shape(), static_cast<size_t>(b));
    int64_t slice = 1;
    for (int64_t d = b + q; d < x.rank(); ++d) slice *= x.dim(d);
    const int64_t per_batch_lookups = idx.numel() / std::max<int64_t>(1, q) / std::max<int64_t>(1, batch);
    int64_t batch_stride = 1;
    for (int64_t d = b; d < x.rank(); ++d) batch_stride *= x.dim(d);
    const size_t es = dtype_size(x.dtype());
    const char* xp = static_cast<const char*>(x.raw());
    char* yp = static_cast<char*>(y.raw());
    int64_t lookup = 0;
    for (int64_t bi = 0; bi < batch; ++bi)
      for (int64_t l = 0; l < per_batch_lookups; ++l, ++lookup) {
        int64_t off = 0;
        for (int64_t j = 0; j < q; ++j) {
          int64_t dim = x.dim(b + j);
          int64_t k = idx.as_int64(lookup * q + j);
          if (k < 0) k += dim;
          SY_CHECK(k >= 0 && k < dim, node_.describe() + ": index out of range");
          off = off * dim + k;
        }
        std::memcpy(yp + static_cast<size_t>(lookup * slice) * es,
                    xp + static_cast<size_t>(bi * batch_stride + off * slice) * es, static_cast<size_t>(slice) * es);
      }
  }
  const Node& node_;
};

SY_REGISTER_OP("", "GatherND", 11, make_factory<GatherND>(), kOpSelectsInput0);

}  // namespace
}  // namespace switchyard
