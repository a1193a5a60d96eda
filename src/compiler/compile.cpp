#include "compiler/compile.h"

#include <map>

#include <set>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "compiler/batch_analysis.h"
#include "compiler/pass_pipeline.h"
#include "kernels/dispatch.h"
#include "ops/kernel.h"

namespace switchyard {

namespace {

// Frees the graph's copy of constants that only kernels which prepacked them read (a fused MoE layer's
// weights would otherwise be held twice: as the graph's constant and in the kernel's packed layout).
void release_prepacked_constants(Graph& g, const Plan& plan) {
  std::vector<int> readers(g.values.size(), 0);
  for (const Node& n : g.nodes)
    for (int in : n.inputs)
      if (in >= 0) ++readers[static_cast<size_t>(in)];
  for (int out : g.outputs) ++readers[static_cast<size_t>(out)];
  const std::set<std::string> captured = g.captured_by_subgraphs();
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!plan.kernels[i] || !plan.kernels[i]->prepacks_constant_inputs()) continue;
    for (int in : g.nodes[i].inputs) {
      Value* v = in >= 0 ? &g.values[static_cast<size_t>(in)] : nullptr;
      if (v && v->constant && readers[static_cast<size_t>(in)] == 1 && !captured.count(v->name)) v->constant.reset();
    }
  }
}

}  // namespace

CompiledGraph compile_graph(Model model, const CompileOptions& options, bool analyse_batching) {
  // The kernel ISA first (the passes run kernels too): SWITCHYARD_ISA or options.isa, never above the CPU.
  if (!options.isa.empty()) set_isa_cap(parse_isa(options.isa));
  else active_isa();  // a bad SWITCHYARD_ISA is reported here, as one line
  PassOptions passes;
  passes.fuse_moe = options.fuse_moe;
  passes.precision = parse_precision(options.precision);
  passes.weight_group = options.weight_group;
  for (const auto& [name, precision] : options.precision_overrides) passes.precision_overrides[name] = parse_precision(precision);
  run_graph_passes(model, passes);
  auto missing = unsupported_ops(*model.graph);
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    throw Error("unsupported operator(s): " + list);
  }
  CompiledGraph out;
  for (const Value& v : model.graph->values)
    if (v.constant) out.weight_bytes += v.constant->nbytes();
  if (options.memory_limit_bytes)
    SY_CHECK(out.weight_bytes < options.memory_limit_bytes,
             "memory ceiling of " + std::to_string(options.memory_limit_bytes) +
                 " bytes exceeded: the weights alone take " + std::to_string(out.weight_bytes));
  out.plan = compile_plan(model.graph);
  // Kernel choices measured while building the plan (dense GEMMs: panels vs oneDNN), one note per
  // distinct choice.
  std::map<std::string, int> choices;
  for (const auto& kernel : out.plan->kernels)
    if (kernel)
      if (std::string choice = kernel->kernel_choice(); !choice.empty()) ++choices[choice];
  for (const auto& [choice, count] : choices)
    model.graph->notes.push_back("kernel choice: " + std::to_string(count) + " node(s): " + choice);
  if (analyse_batching) out.batch_note = rows_independent(*model.graph);
  release_prepacked_constants(*model.graph, *out.plan);  // after everything that reads the graph's constants
  out.model = std::move(model);
#if defined(__GLIBC__)
  // Compiling a large model frees more than it keeps (file bytes, the proof's copies, the graph's weights
  // once prepacked): hand the free heap back to the system instead of holding it for the process's life.
  malloc_trim(0);
#endif
  return out;
}

}  // namespace switchyard
