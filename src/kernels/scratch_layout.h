// Carves one scratch block into 64-byte aligned regions: each take() returns the next offset.
#pragma once

#include <cstddef>

namespace switchyard {

class ScratchLayoutBuilder {
 public:
  size_t take(size_t bytes) {
    const size_t at = offset_;
    offset_ += (bytes + 63) & ~size_t{63};
    return at;
  }
  size_t total() const { return offset_; }

 private:
  size_t offset_ = 0;
};

}  // namespace switchyard
