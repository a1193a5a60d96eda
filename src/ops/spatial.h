// Window geometry shared by Conv and the pooling ops: kernel, strides, dilations, pads (resolved
// from auto_pad) and output size, for 1-D and 2-D inputs (1-D is run as 2-D with height 1).
#pragma once

#include <cmath>

#include "ops/op_utils.h"

namespace switchyard {

struct Window2D {
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int64_t ih = 1, iw = 1, oh = 1, ow = 1;
};

// `spatial` is the number of spatial dims (1 or 2); kernel_shape given (from attr or weights).
inline Window2D make_window(const Node& node, const Shape& in, const std::vector<int64_t>& kernel, bool ceil_mode) {
  const size_t sp = in.size() - 2;
  SY_CHECK(sp == 1 || sp == 2, node.describe() + ": only 1-D and 2-D spatial inputs are supported, got " + shape_str(in));
  SY_CHECK(kernel.size() == sp, node.describe() + ": kernel_shape rank mismatch");
  auto strides = node.attr_ints("strides", std::vector<int64_t>(sp, 1));
  auto dil = node.attr_ints("dilations", std::vector<int64_t>(sp, 1));
  auto pads = node.attr_ints("pads", std::vector<int64_t>(2 * sp, 0));
  SY_CHECK(strides.size() == sp && dil.size() == sp && pads.size() == 2 * sp, node.describe() + ": attribute lengths mismatch");
  std::string auto_pad = node.attr_string("auto_pad", "NOTSET");
  Window2D w;
  std::vector<int64_t> k(2, 1), s(2, 1), d(2, 1), pb(2, 0), pe(2, 0), i(2, 1), o(2, 1);
  for (size_t a = 0; a < sp; ++a) {
    size_t t = a + (2 - sp);
    k[t] = kernel[a];
    s[t] = strides[a];
    d[t] = dil[a];
    pb[t] = pads[a];
    pe[t] = pads[a + sp];
    i[t] = in[2 + a];
    SY_CHECK(k[t] > 0 && s[t] > 0 && d[t] > 0, node.describe() + ": kernel, strides and dilations must be positive");
    const int64_t ek = (k[t] - 1) * d[t] + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      o[t] = (i[t] + s[t] - 1) / s[t];
      int64_t total = std::max<int64_t>(0, (o[t] - 1) * s[t] + ek - i[t]);
      pb[t] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      pe[t] = total - pb[t];
    } else {
      if (auto_pad == "VALID") pb[t] = pe[t] = 0;
      const int64_t span = i[t] + pb[t] + pe[t] - ek;
      SY_CHECK(span >= 0, node.describe() + ": kernel larger than padded input " + shape_str(in));
      o[t] = ceil_mode ? (span + s[t] - 1) / s[t] + 1 : span / s[t] + 1;
      // A ceil-mode window must start inside the input or left padding.
      if (ceil_mode && (o[t] - 1) * s[t] >= i[t] + pb[t]) --o[t];
    }
  }
  w.kh = k[0]; w.kw = k[1]; w.sh = s[0]; w.sw = s[1]; w.dh = d[0]; w.dw = d[1];
  w.pad_top = pb[0]; w.pad_left = pb[1]; w.pad_bottom = pe[0]; w.pad_right = pe[1];
  w.ih = i[0]; w.iw = i[1]; w.oh = o[0]; w.ow = o[1];
  return w;
}

inline Shape window_output_shape(const Shape& in, int64_t channels, const Window2D& w) {
  Shape out{in[0], channels};
  if (in.size() == 4) out.push_back(w.oh);
  out.push_back(w.ow);
  return out;
}

}  // namespace switchyard
