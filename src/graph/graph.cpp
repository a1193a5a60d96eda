#include "graph/graph.h"

namespace switchyard {

int64_t Node::attr_int(const std::string& key, int64_t dflt) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return dflt;
  SY_CHECK(it->second.kind == Attribute::Kind::kInt, describe() + ": attribute '" + key + "' must be an int");
  return it->second.i;
}

float Node::attr_float(const std::string& key, float dflt) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return dflt;
  if (it->second.kind == Attribute::Kind::kInt) return static_cast<float>(it->second.i);
  SY_CHECK(it->second.kind == Attribute::Kind::kFloat, describe() + ": attribute '" + key + "' must be a float");
  return it->second.f;
}

std::string Node::attr_string(const std::string& key, const std::string& dflt) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return dflt;
  SY_CHECK(it->second.kind == Attribute::Kind::kString, describe() + ": attribute '" + key + "' must be a string");
  return it->second.s;
}

std::vector<int64_t> Node::attr_ints(const std::string& key, std::vector<int64_t> dflt) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return dflt;
  SY_CHECK(it->second.kind == Attribute::Kind::kInts, describe() + ": attribute '" + key + "' must be a list of ints");
  return it->second.ints;
}

std::vector<float> Node::attr_floats(const std::string& key) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return {};
  SY_CHECK(it->second.kind == Attribute::Kind::kFloats, describe() + ": attribute '" + key + "' must be a list of floats");
  return it->second.floats;
}

const Tensor* Node::attr_tensor(const std::string& key) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return nullptr;
  SY_CHECK(it->second.kind == Attribute::Kind::kTensor, describe() + ": attribute '" + key + "' must be a tensor");
  return &it->second.t;
}

std::shared_ptr<Graph> Node::attr_graph(const std::string& key) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return nullptr;
  SY_CHECK(it->second.kind == Attribute::Kind::kGraph, describe() + ": attribute '" + key + "' must be a graph");
  return it->second.g;
}

std::string Node::describe() const {
  return "node '" + name + "' (" + (domain.empty() ? "ai.onnx" : domain) + "::" + op_type + "-" +
         std::to_string(opset) + ")";
}

int Graph::add_value(Value v) {
  int id = static_cast<int>(values.size());
  if (!v.name.empty()) value_by_name[v.name] = id;
  values.push_back(std::move(v));
  return id;
}

int Graph::find(const std::string& name) const {
  auto it = value_by_name.find(name);
  return it == value_by_name.end() ? -1 : it->second;
}

std::vector<int> Graph::producers() const {
  std::vector<int> producer(values.size(), -1);
  for (size_t n = 0; n < nodes.size(); ++n)
    for (int out : nodes[n].outputs)
      if (out >= 0) producer[static_cast<size_t>(out)] = static_cast<int>(n);
  return producer;
}

std::set<std::string> captured_by(const Node& node) {
  std::set<std::string> names;
  for (const auto& entry : node.attrs)
    if (entry.second.kind == Attribute::Kind::kGraph && entry.second.g) {
      for (const Value& v : entry.second.g->values)
        if (v.from_outer_scope) names.insert(v.name);
      const auto inner = entry.second.g->captured_by_subgraphs();
      names.insert(inner.begin(), inner.end());
    }
  return names;
}

std::set<std::string> Graph::captured_by_subgraphs() const {
  std::set<std::string> names;
  for (const Node& n : nodes) {
    const auto of_node = captured_by(n);
    names.insert(of_node.begin(), of_node.end());
  }
  return names;
}

size_t Graph::count_nodes_recursive() const {
  size_t n = nodes.size();
  for (const Node& node : nodes)
    for (const auto& [key, attr] : node.attrs)
      if (attr.g) n += attr.g->count_nodes_recursive();
  return n;
}

}  // namespace switchyard
