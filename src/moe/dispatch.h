// Dispatch: a counting sort of the (token, slot) pairs by expert, so that the rows of each expert are
// contiguous (dropless: every pair is kept, whatever the load).
#pragma once

#include <cstdint>

namespace switchyard {

struct Dispatch {
  int64_t* counts;   // [E]   rows per expert
  int64_t* offsets;  // [E+1] start of each expert's rows in sorted order
  int32_t* rows;     // [T*k] sorted position -> flat pair index (token * k + slot)
};

// Fills `d` (caller-provided arrays) from expert_ids [T*k].
void build_dispatch(const int32_t* expert_ids, int64_t pairs, int64_t num_experts, Dispatch& d);

}  // namespace switchyard
