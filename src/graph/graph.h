// Switchyard's graph IR: values (SSA edges with dtype and symbolic shape), nodes, subgraphs.
// Built from ONNX by src/onnx/, rewritten by the passes in src/compiler/passes/, compiled into a plan by src/runtime/.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "core/precision.h"
#include "switchyard/tensor.h"

namespace switchyard {

struct Graph;

// A dimension is known (value >= 0) or symbolic (param, e.g. "batch"), or unknown (both empty).
struct Dim {
  int64_t value = -1;
  std::string param;
  bool known() const { return value >= 0; }
  std::string str() const { return known() ? std::to_string(value) : (param.empty() ? "?" : param); }
};

struct Attribute {
  enum class Kind { kFloat, kInt, kString, kTensor, kGraph, kFloats, kInts, kStrings };
  Kind kind = Kind::kInt;
  float f = 0;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::shared_ptr<Graph> g;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;

  static Attribute integer(int64_t v) {
    Attribute a;
    a.i = v;
    return a;
  }
  static Attribute real(float v) {
    Attribute a;
    a.kind = Kind::kFloat;
    a.f = v;
    return a;
  }
  static Attribute string(std::string v) {
    Attribute a;
    a.kind = Kind::kString;
    a.s = std::move(v);
    return a;
  }
};

struct Value {
  std::string name;
  DType dtype = DType::kUndefined;
  std::optional<std::vector<Dim>> shape;  // nullopt: rank unknown
  std::optional<Tensor> constant;         // initializer or folded constant
  bool from_outer_scope = false;          // subgraph reference to an enclosing graph's value
  // Constant that the model gives as INT8 codes times scales (folded DequantizeLinear of a symmetric
  // INT8 weight, possibly reshaped or transposed): a MoE node reading such expert weights runs INT8.
  bool dequantized_int8 = false;
};

// How a node's weights are stored and multiplied. The model may state it (adopt_model_quantization,
// keep_routers_fp32); the assign_precision pass, last in the pipeline, decides `precision` and
// `weight_group` once from that, the compile precision and the per-node overrides; kernels read them.
struct NodePrecision {
  std::optional<Precision> from_model;  // what the model itself implies (INT8 weights, routers kept FP32)
  int64_t model_weight_group = 0;       // scale granularity of weights the model quantized (0: none)
  Precision precision = Precision::kFp32;
  int64_t weight_group = 32;            // rows per scale of the weight-only formats
};

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;  // "" for the default ONNX domain
  int opset = 0;       // opset version of `domain` imported by the model
  std::vector<int> inputs;   // value ids; -1 for an omitted optional input
  std::vector<int> outputs;  // value ids; -1 for an omitted optional output
  std::map<std::string, Attribute> attrs;
  NodePrecision precision;

  bool has(const std::string& key) const { return attrs.count(key) != 0; }
  int64_t attr_int(const std::string& key, int64_t dflt) const;
  float attr_float(const std::string& key, float dflt) const;
  std::string attr_string(const std::string& key, const std::string& dflt) const;
  std::vector<int64_t> attr_ints(const std::string& key, std::vector<int64_t> dflt = {}) const;
  std::vector<float> attr_floats(const std::string& key) const;
  const Tensor* attr_tensor(const std::string& key) const;
  std::shared_ptr<Graph> attr_graph(const std::string& key) const;
  std::string describe() const;  // "node 'name' (Domain::Op)" for error messages
};

// Names the subgraphs of `node` (If / Loop bodies, recursively) read from outer scopes.
std::set<std::string> captured_by(const Node& node);

struct Graph {
  std::string name;
  std::vector<Value> values;
  std::vector<Node> nodes;  // topologically sorted after import
  std::vector<int> inputs;  // graph inputs that are not initializers
  std::vector<int> outputs;
  std::unordered_map<std::string, int> value_by_name;
  std::vector<std::string> notes;  // what the graph passes did or declined to do (for inspect)
  std::vector<int> telemetry;      // extra values kept after a run (e.g. per-expert token counts)

  int add_value(Value v);
  int find(const std::string& name) const;  // -1 if absent
  size_t count_nodes_recursive() const;
  // Per value id, the index of the node that produces it (-1: input, initializer, or none).
  std::vector<int> producers() const;
  // Names of this graph's values that subgraphs (If/Loop bodies, recursively) read from outside.
  std::set<std::string> captured_by_subgraphs() const;  // captured_by() of every node
};

struct Model {
  std::shared_ptr<Graph> graph;
  int64_t ir_version = 0;
  std::map<std::string, int> opsets;  // domain ("" = ai.onnx) -> version
  std::string producer;
  std::map<std::string, std::string> metadata;
};

}  // namespace switchyard
