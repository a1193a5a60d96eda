// A model repository in Triton's layout: DIR/<model>/<version>/model.onnx, with an optional
// DIR/<model>/config.pbtxt (model_config.proto: batching, queue policy, instances, compile parameters).
// Every served version is compiled at load; a model that fails to load stops the server's start with
// one line naming it (Triton's default, --exit-on-error).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "server/batcher.h"
#include "server/metrics.h"
#include "switchyard/engine.h"

namespace switchyard::serve {

// The defaults a model's config.pbtxt can override (from `switchyard serve`'s flags).
struct RepositoryOptions {
  int threads = 0;  // per model version; 0: one per core
  std::string isa;
};

struct ServedModel {
  std::string name;
  int64_t version = 0;
  std::string version_name;  // version as the protocol spells it ("1")
  std::string path;
  CompiledModel model;
  BatchingConfig batching;
  std::string batching_note;     // why requests are not stacked, when they are not
  int64_t max_batch_size = 0;    // Triton's meaning: > 0, the first dim of every input is the batch
  int64_t default_timeout_us = 0;
  std::unique_ptr<ModelMetrics> metrics;
  std::unique_ptr<DynamicBatcher> batcher;

  // Checks one input of a request against the model: its index among the model's inputs, or an
  // exception (switchyard::Error) whose message says what is wrong.
  size_t input_index(const std::string& input_name) const;
  void check_input(size_t index, DType dtype, const Shape& shape) const;
  size_t output_index(const std::string& output_name) const;
};

class ModelRepository {
 public:
  // Loads every model folder of `dir`; throws switchyard::Error naming the folder on any problem.
  ModelRepository(const std::string& dir, const RepositoryOptions& options);
  ~ModelRepository();

  // The version to serve: `version` "" picks the newest. Null if the model or version is unknown.
  ServedModel* find(const std::string& name, const std::string& version) const;
  bool has_model(const std::string& name) const;
  std::vector<const ServedModel*> versions(const std::string& name) const;  // newest first
  const std::vector<std::unique_ptr<ServedModel>>& models() const { return models_; }
  // Stops every batcher after running what is queued.
  void stop();

 private:
  std::vector<std::unique_ptr<ServedModel>> models_;  // by name, then newest version first
};

}  // namespace switchyard::serve
