#include "moe/dispatch.h"

namespace switchyard {

void build_dispatch(const int32_t* expert_ids, int64_t pairs, int64_t num_experts, Dispatch& d) {
  for (int64_t e = 0; e < num_experts; ++e) d.counts[e] = 0;
  for (int64_t i = 0; i < pairs; ++i) ++d.counts[expert_ids[i]];
  d.offsets[0] = 0;
  for (int64_t e = 0; e < num_experts; ++e) d.offsets[e + 1] = d.offsets[e] + d.counts[e];
  // Stable: within an expert, rows keep token order. `counts` doubles as the fill cursor, then is restored.
  for (int64_t e = 0; e < num_experts; ++e) d.counts[e] = d.offsets[e];
  for (int64_t i = 0; i < pairs; ++i) d.rows[d.counts[expert_ids[i]]++] = static_cast<int32_t>(i);
  for (int64_t e = 0; e < num_experts; ++e) d.counts[e] = d.offsets[e + 1] - d.offsets[e];
}

}  // namespace switchyard
