// Einsum (opset 12): any number of operands, explicit ("ij,jk->ik") or implicit output, ellipsis with
// broadcasting, repeated labels (diagonals). Portable loops over every label combination: the MoE
// exports that use it (dense "every expert" weighting, `te,teh->th`) are fused away, so what runs here
// is small; a model whose hot path is Einsum would want it lowered to MatMul.
#include <algorithm>
#include <map>

#include "ops/op_utils.h"

namespace switchyard {
namespace {

constexpr int kEllipsisBase = 1000;  // labels of ellipsis dims: kEllipsisBase + position

struct Term {
  std::vector<int> labels;  // letters as their char code, ellipsis dims as kEllipsisBase + i
  bool ellipsis = false;
  size_t ellipsis_at = 0;   // position of "..." among the letters
  size_t letters = 0;
};

Term parse_term(const std::string& s, const Node& node) {
  Term t;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == ' ') continue;
    if (c == '.') {
      SY_CHECK(!t.ellipsis && s.compare(i, 3, "...") == 0, node.describe() + ": bad ellipsis in equation term '" + s + "'");
      t.ellipsis = true;
      t.ellipsis_at = t.letters;
      i += 2;
      continue;
    }
    SY_CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'), node.describe() + ": bad label '" + std::string(1, c) + "' in equation");
    t.labels.push_back(c);
    ++t.letters;
  }
  return t;
}

// Labels of one operand of rank `rank`, the ellipsis expanded to the trailing `rank - letters` dims.
std::vector<int> expand(const Term& t, int64_t rank, int64_t ell_rank, const Node& node) {
  const int64_t n_ell = rank - static_cast<int64_t>(t.letters);
  SY_CHECK(t.ellipsis ? n_ell >= 0 : n_ell == 0,
           node.describe() + ": an operand of rank " + std::to_string(rank) + " does not fit its equation term");
  std::vector<int> out(t.labels.begin(), t.labels.begin() + static_cast<long>(t.ellipsis_at));
  if (!t.ellipsis) return t.labels;
  for (int64_t i = 0; i < n_ell; ++i) out.push_back(kEllipsisBase + static_cast<int>(ell_rank - n_ell + i));
  out.insert(out.end(), t.labels.begin() + static_cast<long>(t.ellipsis_at), t.labels.end());
  return out;
}

class Einsum final : public Kernel {
 public:
  explicit Einsum(const KernelBuildInfo& info) : node_(info.node) {
    std::string eq = node_.attr_string("equation", "");
    eq.erase(std::remove(eq.begin(), eq.end(), ' '), eq.end());
    const size_t arrow = eq.find("->");
    const std::string lhs = eq.substr(0, arrow);
    for (size_t start = 0;;) {
      const size_t comma = lhs.find(',', start);
      inputs_.push_back(parse_term(lhs.substr(start, comma - start), node_));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    explicit_output_ = arrow != std::string::npos;
    if (explicit_output_) output_ = parse_term(eq.substr(arrow + 2), node_);
  }

  void compute(KernelContext& ctx) const override {
    SY_CHECK(ctx.num_inputs() == static_cast<int>(inputs_.size()),
             node_.describe() + ": the equation names " + std::to_string(inputs_.size()) + " operands, got " +
                 std::to_string(ctx.num_inputs()));
    const DType dtype = ctx.input(0).dtype();
    int64_t ell_rank = 0;
    for (size_t i = 0; i < inputs_.size(); ++i) {
      SY_CHECK(ctx.input(static_cast<int>(i)).dtype() == dtype, node_.describe() + ": operands differ in dtype");
      ell_rank = std::max(ell_rank, ctx.input(static_cast<int>(i)).rank() - static_cast<int64_t>(inputs_[i].letters));
    }
    // Every label's size (size-1 dims broadcast) and the operands' labels.
    std::map<int, int64_t> size;
    std::vector<std::vector<int>> labels;
    std::map<int, int> count;
    for (size_t i = 0; i < inputs_.size(); ++i) {
      const Tensor& t = ctx.input(static_cast<int>(i));
      labels.push_back(expand(inputs_[i], t.rank(), ell_rank, node_));
      for (size_t d = 0; d < labels[i].size(); ++d) {
        const int l = labels[i][d];
        ++count[l];
        auto [it, fresh] = size.emplace(l, t.dim(static_cast<int64_t>(d)));
        if (!fresh && it->second != t.dim(static_cast<int64_t>(d))) {
          SY_CHECK(it->second == 1 || t.dim(static_cast<int64_t>(d)) == 1,
                   node_.describe() + ": label sizes " + std::to_string(it->second) + " and " +
                       std::to_string(t.dim(static_cast<int64_t>(d))) + " disagree");
          it->second = std::max(it->second, t.dim(static_cast<int64_t>(d)));
        }
      }
    }
    std::vector<int> out_labels;
    if (explicit_output_) {
      out_labels = expand(output_, static_cast<int64_t>(output_.letters) + (output_.ellipsis ? ell_rank : 0), ell_rank, node_);
      for (int l : out_labels) SY_CHECK(size.count(l), node_.describe() + ": output label not among the operands'");
    } else {  // implicit: ellipsis dims, then the labels seen once, in alphabetical order
      for (int64_t i = 0; i < ell_rank; ++i) out_labels.push_back(kEllipsisBase + static_cast<int>(i));
      for (const auto& [l, c] : count)
        if (l < kEllipsisBase && c == 1) out_labels.push_back(l);
      std::sort(out_labels.begin() + ell_rank, out_labels.end());
    }
    std::vector<int> all = out_labels;  // loop order: output labels, then the summed ones
    for (const auto& [l, s] : size)
      if (std::find(all.begin(), all.end(), l) == all.end()) all.push_back(l);
    Shape out_shape;
    for (int l : out_labels) out_shape.push_back(size[l]);
    Tensor& y = ctx.output(0, dtype, out_shape);
    // Per loop label, each operand's stride (0 where it broadcasts or lacks the label).
    const size_t L = all.size(), N = inputs_.size();
    std::vector<int64_t> extent(L), strides(L * N, 0);
    for (size_t a = 0; a < L; ++a) extent[a] = size[all[a]];
    for (size_t i = 0; i < N; ++i) {
      const Tensor& t = ctx.input(static_cast<int>(i));
      int64_t stride = 1;
      for (size_t d = labels[i].size(); d-- > 0;) {
        const size_t a = static_cast<size_t>(std::find(all.begin(), all.end(), labels[i][d]) - all.begin());
        if (t.dim(static_cast<int64_t>(d)) != 1) strides[a * N + i] += stride;
        stride *= t.dim(static_cast<int64_t>(d));
      }
    }
    int64_t outer = 1, inner = 1;
    for (size_t a = 0; a < out_labels.size(); ++a) outer *= extent[a];
    for (size_t a = out_labels.size(); a < L; ++a) inner *= extent[a];
    SY_DISPATCH_NUMERIC(dtype, node_.describe(), {
      T* yp = static_cast<T*>(y.raw());
      std::vector<const T*> xp(N);
      for (size_t i = 0; i < N; ++i) xp[i] = static_cast<const T*>(ctx.input(static_cast<int>(i)).raw());
      std::vector<int64_t> idx(L, 0), off(N, 0);
      for (int64_t o = 0; o < outer; ++o) {
        T acc = 0;
        for (int64_t r = 0; r < inner; ++r) {
          T prod = 1;
          for (size_t i = 0; i < N; ++i) prod = static_cast<T>(prod * xp[i][off[i]]);
          acc = static_cast<T>(acc + prod);
          // Advance the odometer over every label (the summed ones fastest).
          for (size_t a = L; a-- > 0;) {
            for (size_t i = 0; i < N; ++i) off[i] += strides[a * N + i];
            if (++idx[a] < extent[a]) break;
            for (size_t i = 0; i < N; ++i) off[i] -= strides[a * N + i] * extent[a];
            idx[a] = 0;
          }
        }
        yp[o] = acc;
      }
    });
  }

 private:
  const Node& node_;
  std::vector<Term> inputs_;
  Term output_;
  bool explicit_output_ = false;
};

SY_REGISTER_OP("", "Einsum", 12, make_factory<Einsum>());

}  // namespace
}  // namespace switchyard
