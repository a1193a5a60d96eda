// The one place that sets the order of all graph passes.
#pragma once

#include "graph/graph.h"

namespace switchyard {

struct PassOptions {
  bool fuse_moe = true;  // replace exported MoE routing subgraphs by ai.switchyard::MoE
  // For assign_precision: the compile precision, its weight group, and per-node overrides by name.
  Precision precision = Precision::kFp32;
  int64_t weight_group = 32;
  std::map<std::string, Precision> precision_overrides;
};

// Rewrites the model's graph (and subgraphs) in place, in the documented order.
void run_graph_passes(Model& model, const PassOptions& options = {});

// The passes, one per file.
void fold_constants(Graph& graph);        // constant_folding.cpp
void eliminate_dead_nodes(Graph& graph);  // dead_code_elimination.cpp
void fuse_moe_routing(Graph& graph);      // fuse_moe_routing.cpp
void fuse_spatial_moe(Graph& graph);      // fuse_spatial_moe.cpp
void fuse_dense_around_moe(Graph& graph); // fuse_dense_around_moe.cpp
void remove_fake_quantization(Graph& graph);  // remove_fake_quantization.cpp
void adopt_model_quantization(Graph& graph);  // adopt_model_quantization.cpp
void keep_routers_fp32(Graph& graph);         // keep_routers_fp32.cpp
void assign_precision(Graph& graph, const PassOptions& options);  // assign_precision.cpp

}  // namespace switchyard
