#include "kernels/packed_linear.h"

#include <string>

#include "kernels/gemm_panel.h"
#include "kernels/scratch_layout.h"

namespace switchyard {

WeightFormat weight_format_for(Precision p) {
  switch (p) {
    case Precision::kFp16: return WeightFormat::kFp16;
    case Precision::kBf16: return WeightFormat::kBf16;
    case Precision::kInt8: return WeightFormat::kInt8;
    case Precision::kInt4: return WeightFormat::kInt4;
    case Precision::kInt8Weights: return WeightFormat::kInt8Weights;
    case Precision::kInt4Weights: return WeightFormat::kInt4Weights;
    default: return WeightFormat::kFp32;
  }
}

PackedLinear pack_linear(const Tensor& w, int64_t count, int64_t N, int64_t K, WeightFormat format, int64_t group,
                         const std::string& what) {
  SY_CHECK(w.dtype() == DType::kFloat32 && w.numel() == count * N * K,
           what + " must be float32 with " + std::to_string(count * N * K) + " elements, got " + shape_str(w.shape()));
  PackedLinear p;
  p.format = format;
  p.count = count;
  p.N = N;
  p.K = K;
  p.group = group;
  const float* src = w.data<float>();
  switch (format) {
    case WeightFormat::kInt8: p.s8 = quantize_panels_s8_from_linear(src, count, N, K); break;
    case WeightFormat::kInt4: p.s4 = relayout_int4_for_vnni(quantize_panels_from_linear(src, count, N, K, 4, group)); break;
    case WeightFormat::kInt8Weights: p.quant = quantize_panels_from_linear(src, count, N, K, 8, group); break;
    case WeightFormat::kInt4Weights: p.quant = quantize_panels_from_linear(src, count, N, K, 4, group); break;
    case WeightFormat::kBf16: p.panels = pack_panels_bf16_from_linear(src, count, N, K); break;
    case WeightFormat::kFp16: p.panels = pack_panels_fp16_from_linear(src, count, N, K); break;
    default: p.panels = pack_panels_from_linear(src, count, N, K); break;
  }
  return p;
}

namespace {

struct RowsLayout {
  size_t bf16 = 0, u8 = 0, scale = 0, sums = 0, total = 0;
};

RowsLayout rows_layout(WeightFormat format, int64_t M, int64_t n, int64_t group) {
  RowsLayout l;
  ScratchLayoutBuilder b;
  const size_t rows = static_cast<size_t>(M);
  if (bf16_rows(format)) l.bf16 = b.take(rows * static_cast<size_t>(bf16_ld(n)) * 2);
  if (int8_rows(format)) {
    l.u8 = b.take(rows * static_cast<size_t>(s8_row_ld(n)));
    l.scale = b.take(rows * 4);
  }
  if (format == WeightFormat::kInt4) l.sums = b.take(rows * static_cast<size_t>(activation_groups(n, group)) * 4);
  l.total = b.total();
  return l;
}

}  // namespace

size_t linear_rows_bytes(WeightFormat format, int64_t M, int64_t n, int64_t group) {
  return rows_layout(format, M, n, group).total;
}

LinearRows linear_rows(WeightFormat format, float* f32, int64_t M, int64_t n, int64_t group, void* scratch) {
  const RowsLayout l = rows_layout(format, M, n, group);
  auto* base = static_cast<uint8_t*>(scratch);
  LinearRows r;
  r.f32 = f32;
  r.ld = n;
  if (bf16_rows(format)) r.bf16 = reinterpret_cast<uint16_t*>(base + l.bf16);
  if (int8_rows(format)) {
    r.u8 = base + l.u8;
    r.u8_scale = reinterpret_cast<float*>(base + l.scale);
  }
  if (format == WeightFormat::kInt4) {
    r.group_sums = reinterpret_cast<int32_t*>(base + l.sums);
    r.groups = activation_groups(n, group);
  }
  return r;
}

void convert_linear_rows(WeightFormat format, const LinearRows& rows, int64_t r0, int64_t r1, int64_t group) {
  const LinearRows at = rows.from(r0);
  const int64_t n = rows.ld;
  if (bf16_rows(format)) round_rows_to_bf16(at.f32, r1 - r0, n, n, at.bf16, bf16_ld(n));
  if (int8_rows(format)) quantize_rows_u8(at.f32, r1 - r0, n, n, at.u8, s8_row_ld(n), at.u8_scale);
  if (at.group_sums) activation_group_sums(r1 - r0, n, group, at.u8, s8_row_ld(n), at.group_sums);
}

void linear_gemm(const PackedLinear& w, int64_t index, int64_t n, const LinearRows& a, int64_t q0, int64_t q1, float* out,
                 int64_t ldc) {
  const int64_t N = w.N, K = w.K;
  switch (w.format) {
    case WeightFormat::kInt8: gemm_panels_s8(n, a.u8, s8_row_ld(K), a.u8_scale, w.s8, index, q0, q1, out, ldc); break;
    case WeightFormat::kInt4:
      gemm_panels_s4(n, a.u8, s8_row_ld(K), a.u8_scale, a.group_sums, w.s4, index, q0, q1, out, ldc);
      break;
    case WeightFormat::kInt8Weights:
    case WeightFormat::kInt4Weights: gemm_quant_panels(n, a.f32, a.ld, w.quant, index, q0, q1, out, ldc); break;
    case WeightFormat::kFp16:
      gemm_panels_fp16(n, N, K, a.f32, a.ld, static_cast<const uint16_t*>(w.panels.raw()) + index * panel_floats(K, N), q0,
                       q1, out, ldc);
      break;
    case WeightFormat::kBf16:
      gemm_panels_bf16(n, N, K, a.bf16, bf16_ld(K), static_cast<const uint16_t*>(w.panels.raw()) + index * panel_bf16_elems(K, N),
                       q0, q1, out, ldc);
      break;
    default: gemm_panels(n, N, K, a.f32, a.ld, w.panels.data<float>() + index * panel_floats(K, N), q0, q1, out, ldc); break;
  }
}

}  // namespace switchyard
