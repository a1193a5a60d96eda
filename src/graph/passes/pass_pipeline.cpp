#include "graph/passes/pass_pipeline.h"

namespace switchyard {

void run_graph_passes(Model& model) {
  Graph& g = *model.graph;
  // 1. Evaluate everything computable from initializers and Constant nodes once, at compile time
  //    (exporters emit long Shape/Gather/Concat chains over constants).
  fold_constants(g);
  // 2. Drop nodes whose results nobody reads (often left behind by folding).
  eliminate_dead_nodes(g);
}

}  // namespace switchyard
