// switchyard inspect MODEL [--json]: inputs/outputs, opsets, op histogram, parameters and bytes,
// operators Switchyard cannot run, and the node count after graph passes.
#include <fmt/core.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "compiler/pass_pipeline.h"
#include "onnx/onnx_import.h"
#include "runtime/executor.h"

namespace switchyard::cli {

namespace {

std::string dims_str(const Value& v) {
  if (!v.shape) return "?";
  std::string s = "[";
  for (size_t i = 0; i < v.shape->size(); ++i) s += (i ? "," : "") + (*v.shape)[i].str();
  return s + "]";
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  struct Options {
    std::string model;
    bool json = false, nodes = false, before_passes = false;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("inspect", "Describe a model: ports, operators, parameters");
  cmd->add_option("model", opt->model, "ONNX model file")->required();
  cmd->add_flag("--json", opt->json, "print JSON");
  cmd->add_flag("--nodes", opt->nodes, "also list every node after the graph passes (fused MoE layers included) with its output dtypes and shapes");
  cmd->add_flag("--before-passes", opt->before_passes, "with --nodes: list the nodes as imported, before fusion and folding");
  cmd->callback([opt] {
    Model model = load_onnx_file(opt->model);
    const Graph& g = *model.graph;
    std::map<std::string, int64_t> histogram;
    int64_t params = 0, bytes = 0;
    std::function<void(const Graph&)> visit = [&](const Graph& sub) {
      for (const Node& n : sub.nodes) {
        histogram[(n.domain.empty() ? "" : n.domain + "::") + n.op_type]++;
        for (const auto& [k, a] : n.attrs)
          if (a.g) visit(*a.g);
      }
      for (const Value& v : sub.values)
        if (v.constant) {
          params += v.constant->numel();
          bytes += static_cast<int64_t>(v.constant->nbytes());
        }
    };
    visit(g);
    auto missing = unsupported_ops(g);
    const size_t nodes_before = g.count_nodes_recursive();
    // Nodes as they run (after fusion and folding, so that fused layer names for --precision-override
    // appear), or as imported with --before-passes.
    const Graph imported = opt->before_passes ? g : Graph{};
    run_graph_passes(model);
    const size_t nodes_after = model.graph->count_nodes_recursive();
    const Graph& listed = opt->before_passes ? imported : g;
    nlohmann::json node_list = nlohmann::json::array();
    for (const Node& n : listed.nodes) {
      nlohmann::json outs = nlohmann::json::array();
      for (int id : n.outputs)
        if (id >= 0) {
          const Value& v = listed.values[static_cast<size_t>(id)];
          outs.push_back({{"name", v.name}, {"dtype", dtype_name(v.dtype)}, {"shape", dims_str(v)}});
        }
      node_list.push_back({{"name", n.name}, {"op", (n.domain.empty() ? "" : n.domain + "::") + n.op_type}, {"outputs", outs},
                           {"precision", precision_name(n.precision.precision)}});
    }

    nlohmann::json j;
    j["model"] = opt->model;
    j["producer"] = model.producer;
    j["ir_version"] = model.ir_version;
    for (const auto& [d, v] : model.opsets) j["opsets"][d.empty() ? "ai.onnx" : d] = v;
    for (int id : g.inputs) {
      const Value& v = g.values[static_cast<size_t>(id)];
      j["inputs"].push_back({{"name", v.name}, {"dtype", dtype_name(v.dtype)}, {"shape", dims_str(v)}});
    }
    for (int id : g.outputs) {
      const Value& v = g.values[static_cast<size_t>(id)];
      j["outputs"].push_back({{"name", v.name}, {"dtype", dtype_name(v.dtype)}, {"shape", dims_str(v)}});
    }
    j["op_histogram"] = histogram;
    j["nodes"] = nodes_before;
    j["nodes_after_passes"] = nodes_after;
    j["pass_notes"] = model.graph->notes;
    j["parameters"] = params;
    j["parameter_bytes"] = bytes;
    j["unsupported_ops"] = missing;
    j["metadata"] = model.metadata;
    j["kernel_isa"] = kernel_isa();
    if (opt->nodes) j["node_list"] = node_list;
    if (opt->json) {
      fmt::print("{}\n", j.dump(2));
      return;
    }
    fmt::print("model:       {}\nproducer:    {}\nIR version:  {}\nopsets:      ", opt->model, model.producer, model.ir_version);
    for (const auto& [d, v] : model.opsets) fmt::print("{}={} ", d.empty() ? "ai.onnx" : d, v);
    fmt::print("\ninputs:\n");
    for (const auto& p : j["inputs"]) fmt::print("  {} {} {}\n", p["name"].get<std::string>(), p["dtype"].get<std::string>(), p["shape"].get<std::string>());
    fmt::print("outputs:\n");
    for (const auto& p : j["outputs"]) fmt::print("  {} {} {}\n", p["name"].get<std::string>(), p["dtype"].get<std::string>(), p["shape"].get<std::string>());
    fmt::print("parameters:  {} ({} bytes)\nnodes:       {} ({} after constant folding and dead-code elimination)\n",
               params, bytes, nodes_before, nodes_after);
    fmt::print("kernels:     {} (SWITCHYARD_ISA=portable|avx2|avx512 caps them)\nops:\n", kernel_isa());
    std::vector<std::pair<int64_t, std::string>> sorted;
    for (const auto& [op, count] : histogram) sorted.emplace_back(-count, op);
    std::sort(sorted.begin(), sorted.end());
    for (const auto& [neg, op] : sorted) fmt::print("  {:<24} {}\n", op, -neg);
    if (opt->nodes) {
      fmt::print("{}\n", opt->before_passes ? "graph nodes (as imported, before the graph passes):"
                                            : "graph nodes (after the graph passes: fusion, folding; precision at an fp32 compile):");
      for (const auto& n : node_list) {
        std::string outs;
        for (const auto& o : n["outputs"])
          outs += (outs.empty() ? "" : ", ") + o["name"].get<std::string>() + ": " + o["dtype"].get<std::string>() + " " +
                  o["shape"].get<std::string>();
        fmt::print("  {:<28} {:<16} {:<6} -> {}\n", n["name"].get<std::string>(), n["op"].get<std::string>(),
                   opt->before_passes ? "" : n["precision"].get<std::string>(), outs);
      }
    }
    for (const auto& note : model.graph->notes) fmt::print("pass:        {}\n", note);
    if (missing.empty()) {
      fmt::print("unsupported: none (every operator has a kernel)\n");
    } else {
      fmt::print("unsupported:\n");
      for (const auto& m : missing) fmt::print("  {}\n", m);
    }
  });
}

}  // namespace switchyard::cli
