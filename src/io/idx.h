// IDX files (MNIST / Fashion-MNIST format), plain or gzip-compressed.
#pragma once

#include <string>

#include "switchyard/tensor.h"

namespace switchyard {

// Reads an unsigned-byte IDX file into a uint8 tensor with the file's dims.
Tensor read_idx(const std::string& path);

}  // namespace switchyard
