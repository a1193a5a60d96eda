// The sequence family: SequenceEmpty, SequenceConstruct, SequenceInsert, SequenceAt, SequenceErase,
// SequenceLength, SplitToSequence, ConcatFromSequence. Scripted exports emit them for Python lists
// (`outs.append(expert(x))` then `torch.cat(outs)`), often carried through If and Loop bodies.
#include <cstring>

#include "ops/sequence.h"

namespace switchyard {
namespace {

// Position p of a sequence of n items, in [-n, n - 1] (or [-n, n] where the end is allowed).
int64_t position(const Tensor& p, int64_t n, bool end_allowed, const Node& node) {
  SY_CHECK(p.numel() == 1, node.describe() + ": position must be a scalar");
  int64_t i = p.as_int64(0);
  SY_CHECK(i >= -n && (end_allowed ? i <= n : i < n),
           node.describe() + ": position " + std::to_string(i) + " is outside a sequence of " + std::to_string(n));
  return i < 0 ? i + n : i;
}

class SequenceEmpty final : public Kernel {
 public:
  explicit SequenceEmpty(const KernelBuildInfo&) {}
  void compute(KernelContext& ctx) const override { ctx.set_output(0, make_sequence({})); }
};

class SequenceConstruct final : public Kernel {
 public:
  explicit SequenceConstruct(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    std::vector<Tensor> items;
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      SY_CHECK(i == 0 || ctx.input(i).dtype() == ctx.input(0).dtype(), node_.describe() + ": items differ in dtype");
      items.push_back(ctx.input(i).clone());
    }
    ctx.set_output(0, make_sequence(std::move(items)));
  }
  const Node& node_;
};

class SequenceInsert final : public Kernel {
 public:
  explicit SequenceInsert(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    std::vector<Tensor> items = sequence_items(ctx.input(0), node_.describe());
    const Tensor& t = ctx.input(1);
    SY_CHECK(items.empty() || items[0].dtype() == t.dtype(), node_.describe() + ": inserted tensor's dtype differs from the sequence's");
    const int64_t n = static_cast<int64_t>(items.size());
    const int64_t at = ctx.has_input(2) ? position(ctx.input(2), n, true, node_) : n;
    items.insert(items.begin() + at, t.clone());
    ctx.set_output(0, make_sequence(std::move(items)));
  }
  const Node& node_;
};

class SequenceErase final : public Kernel {
 public:
  explicit SequenceErase(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    std::vector<Tensor> items = sequence_items(ctx.input(0), node_.describe());
    const int64_t n = static_cast<int64_t>(items.size());
    SY_CHECK(n > 0, node_.describe() + ": erase from an empty sequence");
    const int64_t at = ctx.has_input(1) ? position(ctx.input(1), n, false, node_) : n - 1;
    items.erase(items.begin() + at);
    ctx.set_output(0, make_sequence(std::move(items)));
  }
  const Node& node_;
};

class SequenceAt final : public Kernel {
 public:
  explicit SequenceAt(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const Tensor& s = ctx.input(0);
    const std::vector<Tensor> items = sequence_items(s, node_.describe());
    const Tensor& item = items[static_cast<size_t>(position(ctx.input(1), s.numel(), false, node_))];
    Tensor& y = ctx.output(0, item.dtype(), item.shape());
    if (item.nbytes()) std::memcpy(y.raw(), item.raw(), item.nbytes());
  }
  const Node& node_;
};

class SequenceLength final : public Kernel {
 public:
  explicit SequenceLength(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const Tensor& s = ctx.input(0);
    SY_CHECK(s.dtype() == DType::kSequence, node_.describe() + ": expected a sequence");
    ctx.output(0, DType::kInt64, {}).data<int64_t>()[0] = s.numel();
  }
  const Node& node_;
};

// Copies `t`'s slab [begin, end) along `axis` into a new tensor (without that axis if !keep_axis: the
// slab is then one index thick, and the bytes are the same).
Tensor slab(const Tensor& t, int64_t axis, int64_t begin, int64_t end, bool keep_axis) {
  Shape s = t.shape();
  s[static_cast<size_t>(axis)] = end - begin;
  if (!keep_axis) s.erase(s.begin() + axis);
  int64_t outer = 1, inner = static_cast<int64_t>(dtype_size(t.dtype()));
  for (int64_t d = 0; d < axis; ++d) outer *= t.dim(d);
  for (int64_t d = axis + 1; d < t.rank(); ++d) inner *= t.dim(d);
  Tensor out(t.dtype(), s);
  const int64_t row = t.dim(axis) * inner, chunk = (end - begin) * inner;
  for (int64_t o = 0; o < outer; ++o)
    if (chunk) std::memcpy(static_cast<char*>(out.raw()) + o * chunk, static_cast<const char*>(t.raw()) + o * row + begin * inner,
                           static_cast<size_t>(chunk));
  return out;
}

class SplitToSequence final : public Kernel {
 public:
  explicit SplitToSequence(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    SY_CHECK(x.dtype() != DType::kSequence && x.rank() >= 1, node_.describe() + ": input must be a tensor of rank >= 1");
    const int64_t axis = normalize_axis(node_.attr_int("axis", 0), x.rank(), node_);
    const int64_t len = x.dim(axis);
    std::vector<int64_t> sizes;
    bool keep = true;
    if (!ctx.has_input(1)) {  // one item per index along the axis
      sizes.assign(static_cast<size_t>(len), 1);
      keep = node_.attr_int("keepdims", 1) != 0;
    } else if (ctx.input(1).rank() == 0 || ctx.input(1).numel() == 1) {
      const int64_t size = ctx.input(1).as_int64(0);
      SY_CHECK(size > 0, node_.describe() + ": split size must be positive");
      for (int64_t b = 0; b < len; b += size) sizes.push_back(std::min(size, len - b));
    } else {
      int64_t total = 0;
      for (int64_t i = 0; i < ctx.input(1).numel(); ++i) {
        sizes.push_back(ctx.input(1).as_int64(i));
        SY_CHECK(sizes.back() >= 0, node_.describe() + ": negative split length");
        total += sizes.back();
      }
      SY_CHECK(total == len, node_.describe() + ": split lengths sum to " + std::to_string(total) + ", axis has " + std::to_string(len));
    }
    std::vector<Tensor> items;
    int64_t begin = 0;
    for (int64_t s : sizes) {
      items.push_back(slab(x, axis, begin, begin + s, keep));
      begin += s;
    }
    ctx.set_output(0, make_sequence(std::move(items)));
  }
  const Node& node_;
};

class ConcatFromSequence final : public Kernel {
 public:
  explicit ConcatFromSequence(const KernelBuildInfo& info) : node_(info.node) {}
  void compute(KernelContext& ctx) const override {
    const std::vector<Tensor> items = sequence_items(ctx.input(0), node_.describe());
    SY_CHECK(!items.empty(), node_.describe() + ": cannot concatenate an empty sequence");
    const bool new_axis = node_.attr_int("new_axis", 0) != 0;
    const Tensor& first = items[0];
    const int64_t rank = first.rank() + (new_axis ? 1 : 0);
    const int64_t axis = normalize_axis(node_.attr_int("axis", 0), rank, node_);
    Shape out_shape = first.shape();
    if (new_axis) out_shape.insert(out_shape.begin() + axis, 0);
    out_shape[static_cast<size_t>(axis)] = 0;
    for (const Tensor& t : items) {
      SY_CHECK(t.dtype() == first.dtype() && t.rank() == first.rank(), node_.describe() + ": items differ in dtype or rank");
      for (int64_t d = 0; d < first.rank(); ++d)
        SY_CHECK(new_axis ? t.dim(d) == first.dim(d) : (d == axis || t.dim(d) == first.dim(d)),
                 node_.describe() + ": items " + shape_str(first.shape()) + " and " + shape_str(t.shape()) + " do not concatenate");
      out_shape[static_cast<size_t>(axis)] += new_axis ? 1 : t.dim(axis);
    }
    Tensor& y = ctx.output(0, first.dtype(), out_shape);
    int64_t outer = 1, inner = static_cast<int64_t>(dtype_size(first.dtype()));
    for (int64_t d = 0; d < axis; ++d) outer *= out_shape[static_cast<size_t>(d)];
    for (int64_t d = axis + 1; d < rank; ++d) inner *= out_shape[static_cast<size_t>(d)];
    const int64_t out_row = out_shape[static_cast<size_t>(axis)] * inner;
    int64_t offset = 0;
    for (const Tensor& t : items) {
      const int64_t chunk = (new_axis ? 1 : t.dim(axis)) * inner;
      for (int64_t o = 0; o < outer; ++o)
        if (chunk) std::memcpy(static_cast<char*>(y.raw()) + o * out_row + offset, static_cast<const char*>(t.raw()) + o * chunk,
                               static_cast<size_t>(chunk));
      offset += chunk;
    }
  }
  const Node& node_;
};

SY_REGISTER_OP("", "SequenceEmpty", 11, make_factory<SequenceEmpty>());
SY_REGISTER_OP("", "SequenceConstruct", 11, make_factory<SequenceConstruct>());
SY_REGISTER_OP("", "SequenceInsert", 11, make_factory<SequenceInsert>());
SY_REGISTER_OP("", "SequenceErase", 11, make_factory<SequenceErase>());
SY_REGISTER_OP("", "SequenceAt", 11, make_factory<SequenceAt>());
SY_REGISTER_OP("", "SequenceLength", 11, make_factory<SequenceLength>());
SY_REGISTER_OP("", "SplitToSequence", 11, make_factory<SplitToSequence>());
SY_REGISTER_OP("", "ConcatFromSequence", 11, make_factory<ConcatFromSequence>());

}  // namespace
}  // namespace switchyard
