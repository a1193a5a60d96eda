#include <set>

#include "compiler/pass_pipeline.h"

namespace switchyard {

namespace {

void collect_reads(const Graph& g, std::set<std::string>& names) {
  for (const Node& n : g.nodes) {
    for (int in : n.inputs)
      if (in >= 0) names.insert(g.values[static_cast<size_t>(in)].name);
    for (const auto& [key, attr] : n.attrs)
      if (attr.g) collect_reads(*attr.g, names);
  }
}

}  // namespace

void eliminate_dead_nodes(Graph& g) {
  std::vector<bool> live(g.values.size(), false);
  for (int out : g.outputs) live[static_cast<size_t>(out)] = true;
  for (int t : g.telemetry) live[static_cast<size_t>(t)] = true;
  std::vector<bool> keep(g.nodes.size(), false);
  for (size_t k = g.nodes.size(); k-- > 0;) {
    const Node& n = g.nodes[k];
    for (int out : n.outputs)
      if (out >= 0 && live[static_cast<size_t>(out)]) keep[k] = true;
    if (!keep[k]) continue;
    for (int in : n.inputs)
      if (in >= 0) live[static_cast<size_t>(in)] = true;
    std::set<std::string> captured;  // values read by name inside subgraphs
    for (const auto& [key, attr] : n.attrs)
      if (attr.g) collect_reads(*attr.g, captured);
    for (const auto& name : captured) {
      int id = g.find(name);
      if (id >= 0) live[static_cast<size_t>(id)] = true;
    }
  }
  std::vector<Node> kept;
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (keep[k]) kept.push_back(std::move(g.nodes[k]));
  g.nodes = std::move(kept);
  // Constants nothing reads any more (the weights of a fused MoE region) need not stay in memory.
  for (size_t v = 0; v < g.values.size(); ++v)
    if (!live[v] && g.values[v].constant) g.values[v].constant.reset();
  for (Node& n : g.nodes)
    for (auto& [key, attr] : n.attrs)
      if (attr.g) eliminate_dead_nodes(*attr.g);
}

}  // namespace switchyard
