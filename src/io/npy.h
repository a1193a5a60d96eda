// NumPy .npy / .npz reading and writing (npz through libzip, stored or deflated members).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "switchyard/tensor.h"

namespace switchyard {

Tensor parse_npy(const std::string& bytes, const std::string& what);
std::string serialize_npy(const Tensor& t);

Tensor read_npy(const std::string& path);
// Members in file order; ".npy" is stripped from their names.
std::vector<std::pair<std::string, Tensor>> read_npz(const std::string& path);
// Writes atomically: a temporary file in the same folder is renamed over `path` only on success.
void write_npz(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors);

}  // namespace switchyard
