// Can independent requests be stacked along dim 0 and run as one batch (auto-batching, throughput
// hint)? Only if every output row depends on the same row of the inputs alone. Proven op by op on the
// compiled graph; anything the analysis does not know makes the model unbatchable.
#pragma once

#include <string>

#include "graph/graph.h"

namespace switchyard {

// "" when rows are independent along dim 0 of every input and output; otherwise why not.
std::string rows_independent(const Graph& graph);

}  // namespace switchyard
