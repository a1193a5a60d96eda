#include <algorithm>
#include <cstring>

#include "ops/kernel.h"

namespace switchyard {

const Tensor& KernelContext::input(int i) const {
  SY_CHECK(has_input(i), node_->describe() + ": required input " + std::to_string(i) + " is missing");
  return *inputs_[static_cast<size_t>(i)];
}

const Tensor& KernelContext::output_view(int i, int in, const Shape& shape) {
  const Tensor& x = input(in);
  if (x.dtype() == DType::kSequence) {  // Identity of a list: share it
    set_output(i, x);
    return x;
  }
  Tensor& y = output(i, x.dtype(), shape);
  SY_CHECK(y.nbytes() == x.nbytes(), node_->describe() + ": view changes the size");
  if (x.nbytes()) std::memcpy(y.raw(), x.raw(), x.nbytes());
  return y;
}

bool KernelContext::wants_output(int i) const {
  return i < num_outputs_ && output_wanted_[static_cast<size_t>(i)];
}

OpRegistry& OpRegistry::instance() {
  static OpRegistry registry;
  return registry;
}

void OpRegistry::add(const std::string& domain, const std::string& op_type, int since_opset, KernelFactory factory,
                     uint32_t properties) {
  properties_[{domain, op_type}] |= properties;
  auto& list = entries_[{domain, op_type}];
  list.push_back({since_opset, std::move(factory)});
  std::sort(list.begin(), list.end(), [](const Entry& a, const Entry& b) { return a.since > b.since; });
}

const KernelFactory* OpRegistry::find(const std::string& domain, const std::string& op_type, int opset) const {
  auto it = entries_.find({domain, op_type});
  if (it == entries_.end()) return nullptr;
  for (const Entry& e : it->second)
    if (opset >= e.since) return &e.factory;
  return nullptr;
}

uint32_t OpRegistry::properties(const std::string& domain, const std::string& op_type) const {
  auto it = properties_.find({domain, op_type});
  return it == properties_.end() ? 0 : it->second;
}

std::vector<std::string> OpRegistry::list() const {
  std::vector<std::string> out;
  for (const auto& [key, entries] : entries_) out.push_back((key.first.empty() ? "ai.onnx" : key.first) + "::" + key.second);
  return out;
}

}  // namespace switchyard
