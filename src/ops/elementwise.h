// Broadcasting element-wise loops shared by the element-wise op files.
#pragma once

#include "ops/op_utils.h"
#include "core/thread_pool.h"

namespace switchyard {

// y = f(a, b) with NumPy broadcasting; A and B are read as TA / TB, Y written as TY.
template <typename TA, typename TB, typename TY, typename F>
void broadcast_binary(const Tensor& a, const Tensor& b, Tensor& y, F f) {
  const TA* ap = static_cast<const TA*>(a.raw());
  const TB* bp = static_cast<const TB*>(b.raw());
  TY* yp = static_cast<TY*>(y.raw());
  const int64_t n = y.numel();
  if (a.shape() == b.shape() && a.numel() == n) {
    for (int64_t i = 0; i < n; ++i) yp[i] = f(ap[i], bp[i]);
    return;
  }
  if (b.numel() == 1 && a.numel() == n) {
    const TB s = bp[0];
    for (int64_t i = 0; i < n; ++i) yp[i] = f(ap[i], s);
    return;
  }
  auto sa = broadcast_strides(a.shape(), y.shape()), sb = broadcast_strides(b.shape(), y.shape());
  for_each_broadcast_run(y.shape(), sa, sb, [&](int64_t o, int64_t oa, int64_t ob, int64_t cnt, int64_t ia, int64_t ib) {
    for (int64_t j = 0; j < cnt; ++j) yp[o + j] = f(ap[oa + j * ia], bp[ob + j * ib]);
  });
}

// y = f(x) over all elements, split over the pool when large.
template <typename TX, typename TY, typename F>
void unary_map(const Tensor& x, Tensor& y, ThreadPool& pool, F f) {
  const TX* xp = static_cast<const TX*>(x.raw());
  TY* yp = static_cast<TY*>(y.raw());
  pool.parallel_for(x.numel(), 16384, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) yp[i] = f(xp[i]);
  });
}

}  // namespace switchyard
