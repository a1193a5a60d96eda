// Compile orchestration: a loaded model -> graph passes -> kernels (a Plan), with the checks that belong
// to compiling (kernel ISA, unsupported operators, memory ceiling) and the batch analysis. The engine
// (src/engine/) adds request state, streams and auto-batching on top.
#pragma once

#include <memory>
#include <string>

#include "graph/graph.h"
#include "runtime/executor.h"
#include "switchyard/engine.h"

namespace switchyard {

struct CompiledGraph {
  Model model;                        // the graph after the passes (constants that kernels prepacked freed)
  std::shared_ptr<const Plan> plan;   // kernels built, memory plan made
  size_t weight_bytes = 0;            // constants held by the graph before kernels prepacked them
  std::string batch_note;             // "" if rows are independent (auto-batching allowed), else why not
};

// Throws a one-line Error for a bad ISA or precision, an unsupported operator or a memory ceiling the
// weights alone exceed. analyse_batching: run the batch analysis (rows_independent) before constants go.
CompiledGraph compile_graph(Model model, const CompileOptions& options, bool analyse_batching);

}  // namespace switchyard
