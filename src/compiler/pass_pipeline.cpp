#include "compiler/pass_pipeline.h"

namespace switchyard {

void run_graph_passes(Model& model, const PassOptions& options) {
  Graph& g = *model.graph;
  // 1. Evaluate everything computable from initializers and Constant nodes once, at compile time
  //    (exporters emit long Shape/Gather/Concat chains over constants).
  fold_constants(g);
  // 2. Drop nodes whose results nobody reads (often left behind by folding).
  eliminate_dead_nodes(g);
  // 3. Drop the activation QuantizeLinear/DequantizeLinear pairs of QDQ models (weights were folded by
  //    step 1): they would hide the routing subgraph from step 4, and step 6 picks the INT8 kernels.
  if (options.fuse_moe) remove_fake_quantization(g);
  // 4. Replace exported MoE routing subgraphs (TopK router, per-expert Gather/Gemm chains, scatter-add
  //    combine) by one sparse ai.switchyard::MoE node each; needs the constants folded by step 1.
  if (options.fuse_moe) fuse_moe_routing(g);
  //    Per-block image MoE exported densely (every expert CNN, then a per-block mask) becomes one sparse
  //    ai.switchyard::SpatialMoE node; SpatialMoE nodes get their expert-load telemetry.
  if (options.fuse_moe) fuse_spatial_moe(g);
  // 5. Fold the dense layers around small MoE layers into their node (one pass per row tile); also
  //    applies to MoE nodes that came with the model.
  if (options.fuse_moe) fuse_dense_around_moe(g);
  // 6. MoE and dense layers whose weights the model gives as INT8 (folded DequantizeLinear) run INT8.
  adopt_model_quantization(g);
  // 7. Routers left unfused stay FP32 whatever the compile precision (routing must not change).
  keep_routers_fp32(g);
  // 8. Decide every node's precision and weight group in one place: per-node override, else what the
  //    model states (steps 6 and 7), else the compile precision.
  assign_precision(g, options);
}

}  // namespace switchyard
