#include "compiler/batch_analysis.h"

#include <set>

#include "ops/kernel.h"

namespace switchyard {

namespace {

enum class Kind { kConstant, kRows, kOther };  // kRows: dim 0 is the batch, rows independent

int rank_of(const Value& v) { return v.shape ? static_cast<int>(v.shape->size()) : -1; }

// Axis attribute normalised against the rank; -1 when it cannot be.
int64_t axis_of(const Node& n, const char* key, int64_t dflt, int rank) {
  int64_t a = n.attr_int(key, dflt);
  if (rank < 0) return a >= 0 ? a : -1;
  if (a < 0) a += rank;
  return a >= 0 && a < rank ? a : -1;
}

}  // namespace

std::string rows_independent(const Graph& g) {
  std::vector<Kind> kind(g.values.size(), Kind::kOther);
  for (size_t v = 0; v < g.values.size(); ++v)
    if (g.values[v].constant) kind[v] = Kind::kConstant;
  if (g.inputs.empty()) return "the model has no inputs";
  for (int id : g.inputs) {
    const Value& v = g.values[static_cast<size_t>(id)];
    if (rank_of(v) < 1 || (*v.shape)[0].known())
      return "input '" + v.name + "' has no symbolic batch dimension 0";
    kind[static_cast<size_t>(id)] = Kind::kRows;
  }
  auto k = [&](int id) { return id < 0 ? Kind::kConstant : kind[static_cast<size_t>(id)]; };
  for (const Node& n : g.nodes) {
    const std::string why = "node '" + n.name + "' (" + n.op_type + ") mixes rows or is not known to keep them apart";
    bool any_rows = false, all_known = true;
    for (int in : n.inputs) {
      any_rows |= k(in) == Kind::kRows;
      all_known &= k(in) != Kind::kOther;
    }
    if (!all_known) return why;
    Kind out = Kind::kOther;
    if (!any_rows) {
      out = Kind::kConstant;  // computed from constants only (dead after folding, but harmless)
    } else if (n.attrs.count("then_branch") || n.attrs.count("body") || n.attrs.count("else_branch")) {
      return why;
    } else if (n.inputs.empty() || n.inputs[0] < 0) {
      return why;
    } else {
      const Value& x = g.values[static_cast<size_t>(n.inputs[0])];
      const int rank = rank_of(x);
      auto others_constant = [&] {
        for (size_t i = 1; i < n.inputs.size(); ++i)
          if (k(n.inputs[i]) != Kind::kConstant) return false;
        return true;
      };
      const std::string& op = n.op_type;
      if (n.domain == "ai.switchyard" && op == "MoE") {
        if (k(n.inputs[0]) == Kind::kRows && others_constant()) out = Kind::kRows;
      } else if (n.domain == "com.microsoft" && op == "MoE") {
        // router_probs (input 1) is per token, like X.
        bool ok = k(n.inputs[0]) == Kind::kRows && n.inputs.size() > 1 && k(n.inputs[1]) == Kind::kRows;
        for (size_t i = 2; i < n.inputs.size(); ++i) ok &= k(n.inputs[i]) == Kind::kConstant;
        if (ok) out = Kind::kRows;
      } else if (!n.domain.empty()) {
        return why;
      } else if (op_has(n, kOpRowsElementwise)) {
        if (k(n.inputs[0]) == Kind::kRows && others_constant()) out = Kind::kRows;
      } else if (op_has(n, kOpRowsBroadcast)) {
        // Row inputs must all have dim 0 = batch (same rank as the output); constants must broadcast
        // along dim 0 (lower rank, or size 1 there).
        int out_rank = -1;
        for (int o : n.outputs)
          if (o >= 0) out_rank = std::max(out_rank, rank_of(g.values[static_cast<size_t>(o)]));
        bool ok = out_rank >= 1;
        for (int in : n.inputs) {
          if (in < 0 || !ok) continue;
          const Value& v = g.values[static_cast<size_t>(in)];
          if (k(in) == Kind::kRows) ok = rank_of(v) == out_rank;
          else ok = (v.constant ? v.constant->rank() : rank_of(v)) < out_rank ||
                    (v.constant && v.constant->rank() == out_rank && v.constant->dim(0) == 1);
        }
        if (ok) out = Kind::kRows;
      } else if (op == "Gemm") {
        if (k(n.inputs[0]) == Kind::kRows && n.attr_int("transA", 0) == 0 && others_constant()) {
          bool c_ok = n.inputs.size() < 3 || n.inputs[2] < 0;
          if (!c_ok) {
            const auto& c = g.values[static_cast<size_t>(n.inputs[2])].constant;
            c_ok = c && (c->rank() <= 1 || c->dim(0) == 1);
          }
          if (c_ok) out = Kind::kRows;
        }
      } else if (op == "MatMul") {
        if (n.inputs.size() == 2 && n.inputs[1] >= 0 && k(n.inputs[0]) == Kind::kRows && rank >= 2 &&
            k(n.inputs[1]) == Kind::kConstant && rank_of(g.values[static_cast<size_t>(n.inputs[1])]) <= 2 &&
            rank_of(g.values[static_cast<size_t>(n.inputs[1])]) >= 1)
          out = Kind::kRows;
      } else if (op_has(n, kOpRowsWithWeights)) {
        if (k(n.inputs[0]) == Kind::kRows && others_constant() && n.attr_int("training_mode", 0) == 0) out = Kind::kRows;
      } else if (op == "Flatten") {
        if (axis_of(n, "axis", 1, rank) >= 1) out = Kind::kRows;
      } else if (op == "Reshape") {
        // Constant target shape keeping dim 0 (0 = copy it), or -1 there with every other dim fixed
        // and equal in product to the input's fixed trailing dims.
        if (n.inputs.size() < 2 || n.inputs[1] < 0) return why;
        const Value& s = g.values[static_cast<size_t>(n.inputs[1])];
        if (k(n.inputs[1]) == Kind::kConstant && s.constant && s.constant->dtype() == DType::kInt64 &&
            s.constant->numel() >= 1 && rank >= 1) {
          const int64_t* dims = s.constant->data<int64_t>();
          int64_t rest = 1, in_rest = 1;
          bool fixed = true;
          for (int64_t i = 1; i < s.constant->numel(); ++i) {
            fixed &= dims[i] > 0;
            rest *= dims[i] > 0 ? dims[i] : 1;
          }
          for (int i = 1; i < rank; ++i) {
            fixed &= (*x.shape)[static_cast<size_t>(i)].known();
            in_rest *= (*x.shape)[static_cast<size_t>(i)].known() ? (*x.shape)[static_cast<size_t>(i)].value : 1;
          }
          if ((dims[0] == 0 && n.attr_int("allowzero", 0) == 0) || (dims[0] == -1 && fixed && rest == in_rest))
            out = Kind::kRows;
        }
      } else if (op == "Softmax" || op == "LogSoftmax" || op == "Hardmax" || op == "LayerNormalization") {
        const int64_t dflt = op == "LayerNormalization" || n.opset >= 13 ? -1 : 1;
        if (axis_of(n, "axis", dflt, rank) >= 1 && others_constant()) out = Kind::kRows;
      } else if (op == "Transpose") {
        auto perm = n.attr_ints("perm");
        if (!perm.empty() && perm[0] == 0) out = Kind::kRows;
      } else if (op == "ArgMax" || op == "ArgMin") {
        if (axis_of(n, "axis", 0, rank) >= 1) out = Kind::kRows;
      } else if (op == "TopK") {
        if (axis_of(n, "axis", -1, rank) >= 1 && others_constant()) out = Kind::kRows;
      } else if (op == "Squeeze" || op == "Unsqueeze") {
        std::vector<int64_t> axes = n.attr_ints("axes");
        if (n.inputs.size() > 1 && n.inputs[1] >= 0) {
          const Value& a = g.values[static_cast<size_t>(n.inputs[1])];
          if (!a.constant || a.constant->dtype() != DType::kInt64) return why;
          axes.assign(a.constant->data<int64_t>(), a.constant->data<int64_t>() + a.constant->numel());
        }
        const int out_rank = op == "Squeeze" ? rank : rank + static_cast<int>(axes.size());
        bool ok = !axes.empty() && rank >= 1;
        for (int64_t a : axes) ok &= (a < 0 ? a + out_rank : a) >= 1;
        if (ok) out = Kind::kRows;
      }
    }
    if (out == Kind::kOther) return why;
    for (int o : n.outputs)
      if (o >= 0) kind[static_cast<size_t>(o)] = out;
    // Aggregates over the batch (per-expert token counts) are telemetry, not rows.
    if (n.op_type == "MoE" && n.outputs.size() > 1 && n.outputs[1] >= 0) kind[static_cast<size_t>(n.outputs[1])] = Kind::kOther;
  }
  for (int id : g.outputs)
    if (k(id) != Kind::kRows) return "output '" + g.values[static_cast<size_t>(id)].name + "' is not computed row by row";
  return "";
}

}  // namespace switchyard
