// What the server says about itself in both protocols, and the one wording of an unknown-model error.
#pragma once

#include <string>

#include "server/model_repository.h"

namespace switchyard::serve {

inline constexpr const char* kServerName = "switchyard";
inline constexpr const char* kServerVersion = "0.1.0";
inline constexpr const char* kPlatform = "switchyard_onnx";
// KServe v2 extensions served: the binary tensor data of HTTP requests and responses.
inline constexpr const char* kServerExtensions[] = {"binary_tensor_data"};

inline std::string unknown_model_message(const ModelRepository& repository, const std::string& name,
                                         const std::string& version) {
  if (!repository.has_model(name)) return "unknown model '" + name + "'";
  return "unknown version '" + version + "' of model '" + name + "'";
}

}  // namespace switchyard::serve
