#include "server/model_repository.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "model_config.pb.h"
#include "server/datatype.h"
#include "switchyard/error.h"

namespace switchyard::serve {
namespace fs = std::filesystem;

namespace {

// The first text-format error, as "config.pbtxt:LINE:COL: message".
class FirstError : public google::protobuf::io::ErrorCollector {
 public:
  explicit FirstError(std::string file) : file_(std::move(file)) {}
  void AddError(int line, int column, const std::string& message) override {
    if (first_.empty())
      first_ = file_ + ":" + std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + message;
  }
  const std::string& first() const { return first_; }

 private:
  std::string file_;
  std::string first_;
};

ModelConfig read_config(const fs::path& path) {
  ModelConfig config;
  if (!fs::exists(path)) return config;
  std::ifstream in(path);
  SY_CHECK(in, "cannot read '" + path.string() + "'");
  std::stringstream text;
  text << in.rdbuf();
  FirstError errors(path.string());
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text.str(), &config))
    throw Error(errors.first().empty() ? path.string() + ": not a model configuration" : errors.first() +
                " (fields Switchyard reads: src/server/model_config.proto)");
  return config;
}

std::string parameter(const ModelConfig& config, const std::string& key, const std::string& fallback) {
  const auto it = config.parameters().find(key);
  return it == config.parameters().end() ? fallback : it->second.string_value();
}

int int_parameter(const ModelConfig& config, const std::string& key, int fallback, const std::string& where) {
  const std::string value = parameter(config, key, "");
  if (value.empty()) return fallback;
  try {
    size_t used = 0;
    const int v = std::stoi(value, &used);
    if (used == value.size() && v >= 0) return v;
  } catch (const std::exception&) {
  }
  throw Error(where + ": parameter '" + key + "' must be a non-negative integer, not '" + value + "'");
}

DType config_dtype(DataType t) {
  switch (t) {
    case TYPE_BOOL: return DType::kBool;
    case TYPE_UINT8: return DType::kUInt8;
    case TYPE_UINT16: return DType::kUInt16;
    case TYPE_UINT32: return DType::kUInt32;
    case TYPE_UINT64: return DType::kUInt64;
    case TYPE_INT8: return DType::kInt8;
    case TYPE_INT16: return DType::kInt16;
    case TYPE_INT32: return DType::kInt32;
    case TYPE_INT64: return DType::kInt64;
    case TYPE_FP16: return DType::kFloat16;
    case TYPE_FP32: return DType::kFloat32;
    case TYPE_FP64: return DType::kFloat64;
    case TYPE_BF16: return DType::kBFloat16;
    default: return DType::kUndefined;
  }
}

// The config's declared tensors must be the model's (name, datatype, and dims after the batch dim).
void check_declared(const google::protobuf::RepeatedPtrField<ModelTensor>& declared, const std::vector<PortInfo>& ports,
                    int64_t max_batch_size, const char* kind, const std::string& where) {
  for (const ModelTensor& t : declared) {
    auto it = std::find_if(ports.begin(), ports.end(), [&](const PortInfo& p) { return p.name == t.name(); });
    SY_CHECK(it != ports.end(), where + ": " + kind + " '" + t.name() + "' is not an " + kind + " of the model");
    SY_CHECK(t.data_type() == TYPE_INVALID || config_dtype(t.data_type()) == it->dtype,
             where + ": " + kind + " '" + t.name() + "' is " + protocol_datatype(it->dtype) + " in the model, not " +
                 DataType_Name(t.data_type()));
    if (t.dims_size() == 0 || !it->rank_known) continue;
    const size_t skip = max_batch_size > 0 ? 1 : 0;
    bool same = it->shape.size() == t.dims_size() + skip;
    for (int d = 0; same && d < t.dims_size(); ++d) {
      const int64_t model_dim = it->shape[static_cast<size_t>(d) + skip];
      same = t.dims(d) == -1 || model_dim == -1 || t.dims(d) == model_dim;
    }
    SY_CHECK(same, where + ": " + kind + " '" + t.name() + "' has dims " + shape_str({t.dims().begin(), t.dims().end()}) +
                       " in the config but shape " + shape_str(it->shape) + " in the model" +
                       (skip ? " (the config leaves out the batch dimension)" : ""));
  }
}

std::vector<int64_t> version_folders(const fs::path& model_dir, const std::string& file) {
  std::vector<int64_t> versions;
  for (const auto& entry : fs::directory_iterator(model_dir)) {
    if (!entry.is_directory()) continue;
    const std::string name = entry.path().filename().string();
    // Versions are positive integers spelled without leading zeros ("1", "12"), as in Triton.
    if (name.empty() || name.size() > 18 || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    if (name[0] == '0') continue;
    if (fs::exists(entry.path() / file)) versions.push_back(std::stoll(name));
  }
  std::sort(versions.rbegin(), versions.rend());
  return versions;
}

std::vector<int64_t> served_versions(const ModelConfig& config, std::vector<int64_t> found, const std::string& where) {
  const ModelVersionPolicy& policy = config.version_policy();
  if (policy.has_all()) return found;
  if (policy.has_specific()) {
    std::vector<int64_t> chosen;
    for (int64_t v : policy.specific().versions()) {
      SY_CHECK(std::find(found.begin(), found.end(), v) != found.end(),
               where + ": version " + std::to_string(v) + " of version_policy has no model file");
      chosen.push_back(v);
    }
    std::sort(chosen.rbegin(), chosen.rend());
    return chosen;
  }
  const size_t keep = policy.has_latest() && policy.latest().num_versions() > 0 ? policy.latest().num_versions() : 1;
  if (found.size() > keep) found.resize(keep);
  return found;
}

std::unique_ptr<ServedModel> load_version(const std::string& name, int64_t version, const fs::path& file,
                                          const ModelConfig& config, const RepositoryOptions& defaults,
                                          const std::string& where) {
  auto served = std::make_unique<ServedModel>();
  served->name = name;
  served->version = version;
  served->version_name = std::to_string(version);
  served->path = file.string();
  SY_CHECK(config.max_batch_size() >= 0, where + ": max_batch_size must be >= 0");
  served->max_batch_size = config.max_batch_size();

  CompileOptions options;
  options.threads = int_parameter(config, "threads", defaults.threads, where);
  options.hint = parse_performance_hint(parameter(config, "hint", "latency"));
  options.precision = parameter(config, "precision", "fp32");
  options.weight_group = int_parameter(config, "weight_group", options.weight_group, where);
  options.isa = parameter(config, "isa", defaults.isa);
  int streams = int_parameter(config, "streams", 0, where);
  for (const ModelInstanceGroup& group : config.instance_group()) {
    SY_CHECK(group.kind() != ModelInstanceGroup::KIND_GPU, where + ": instance_group KIND_GPU: Switchyard runs on the CPU");
    streams += std::max(group.count(), 1);
  }
  options.streams = streams;
  const bool dynamic = config.has_dynamic_batching() && config.max_batch_size() > 1;
  // Ask the engine's batch analysis whether the rows of this model are independent.
  options.auto_batch = dynamic ? static_cast<int>(std::min<int64_t>(config.max_batch_size(), 256)) : 0;
  try {
    served->model = Engine().compile(file.string(), options);
  } catch (const std::exception& e) {
    throw Error(where + ": " + e.what());
  }
  check_declared(config.input(), served->model.inputs(), config.max_batch_size(), "input", where);
  check_declared(config.output(), served->model.outputs(), config.max_batch_size(), "output", where);
  if (config.max_batch_size() > 0)
    for (const PortInfo& p : served->model.inputs())
      SY_CHECK(!p.rank_known || (!p.shape.empty() && p.shape[0] != 0 &&
                                 (p.shape[0] == -1 || p.shape[0] >= config.max_batch_size())),
               where + ": max_batch_size " + std::to_string(config.max_batch_size()) + " but input '" + p.name +
                   "' has shape " + shape_str(p.shape) + " (its first dimension must be the batch)");

  BatchingConfig& b = served->batching;
  if (dynamic) {
    if (served->model.auto_batch() > 1) {
      b.enabled = true;
      b.max_batch_size = config.max_batch_size();
    } else {
      served->batching_note = served->model.auto_batch_note();
    }
    const ModelDynamicBatching& d = config.dynamic_batching();
    for (int32_t p : d.preferred_batch_size()) {
      SY_CHECK(p > 0 && p <= config.max_batch_size(),
               where + ": preferred_batch_size " + std::to_string(p) + " is not in 1..max_batch_size");
      b.preferred_batch_sizes.push_back(p);
    }
    b.max_queue_delay_us = static_cast<int64_t>(std::min<uint64_t>(d.max_queue_delay_microseconds(), 10'000'000));
    b.max_queue_size = d.default_queue_policy().max_queue_size();
    served->default_timeout_us = static_cast<int64_t>(
        std::min<uint64_t>(d.default_queue_policy().default_timeout_microseconds(), 3'600'000'000ull));
  } else {
    served->batching_note = config.has_dynamic_batching() ? "off (max_batch_size <= 1)" : "off (no dynamic_batching in the config)";
  }
  served->metrics = std::make_unique<ModelMetrics>();
  served->batcher = std::make_unique<DynamicBatcher>(served->model, b, *served->metrics);
  return served;
}

}  // namespace

namespace {
// The index of port `wanted` among a model's inputs or outputs, or an error that lists them.
size_t port_index(const std::vector<PortInfo>& ports, const std::string& wanted, const char* kind, const std::string& model) {
  for (size_t i = 0; i < ports.size(); ++i)
    if (ports[i].name == wanted) return i;
  std::string known;
  for (const auto& p : ports) known += (known.empty() ? "" : ", ") + p.name;
  throw Error(std::string("unknown ") + kind + " '" + wanted + "' for model '" + model + "' (" + kind + "s: " + known + ")");
}
}  // namespace

size_t ServedModel::input_index(const std::string& input_name) const {
  return port_index(model.inputs(), input_name, "input", name);
}

size_t ServedModel::output_index(const std::string& output_name) const {
  return port_index(model.outputs(), output_name, "output", name);
}

void ServedModel::check_input(size_t index, DType dtype, const Shape& shape) const {
  const PortInfo& port = model.inputs()[index];
  SY_CHECK(dtype == port.dtype, "input '" + port.name + "': datatype " + protocol_datatype(dtype) + ", expected " +
                                    protocol_datatype(port.dtype));
  for (int64_t d : shape) SY_CHECK(d >= 0, "input '" + port.name + "': negative dimension in shape " + shape_str(shape));
  bool same = !port.rank_known || port.shape.size() == shape.size();
  for (size_t d = 0; same && port.rank_known && d < shape.size(); ++d) same = port.shape[d] == -1 || port.shape[d] == shape[d];
  SY_CHECK(same, "input '" + port.name + "': shape " + shape_str(shape) + ", expected " + shape_str(port.shape) +
                     " (-1: any size)");
  if (max_batch_size > 0) {
    SY_CHECK(!shape.empty() && shape[0] >= 1 && shape[0] <= max_batch_size,
             "input '" + port.name + "': batch size " + (shape.empty() ? std::string("missing") : std::to_string(shape[0])) +
                 " is not in 1.." + std::to_string(max_batch_size) + " (max_batch_size)");
  }
  checked_numel(shape);
}

ModelRepository::ModelRepository(const std::string& dir, const RepositoryOptions& options) {
  const fs::path root(dir);
  SY_CHECK(fs::is_directory(root), "model repository '" + dir + "' is not a directory");
  std::vector<fs::path> folders;
  for (const auto& entry : fs::directory_iterator(root))
    if (entry.is_directory() && entry.path().filename().string()[0] != '.') folders.push_back(entry.path());
  std::sort(folders.begin(), folders.end());
  for (const fs::path& folder : folders) {
    const std::string name = folder.filename().string();
    const std::string where = "model '" + name + "' (" + folder.string() + ")";
    const ModelConfig config = read_config(folder / "config.pbtxt");
    SY_CHECK(config.name().empty() || config.name() == name,
             where + ": config.pbtxt names the model '" + config.name() + "', but its folder is '" + name + "'");
    SY_CHECK(config.platform().empty() || config.platform() == "onnxruntime_onnx" || config.platform() == "switchyard_onnx",
             where + ": platform '" + config.platform() + "': Switchyard serves ONNX models");
    const std::string file = config.default_model_filename().empty() ? "model.onnx" : config.default_model_filename();
    SY_CHECK(file.find('/') == std::string::npos && file != ".." ,
             where + ": default_model_filename must be a file name, not a path");
    const std::vector<int64_t> found = version_folders(folder, file);
    SY_CHECK(!found.empty(), where + ": no version folder with a " + file + " (expected " + name + "/1/" + file + ")");
    for (int64_t v : served_versions(config, found, where))
      models_.push_back(load_version(name, v, folder / std::to_string(v) / file, config, options, where));
  }
  SY_CHECK(!models_.empty(), "model repository '" + dir + "' has no model folders (expected DIR/NAME/1/model.onnx)");
}

ModelRepository::~ModelRepository() { stop(); }

ServedModel* ModelRepository::find(const std::string& name, const std::string& version) const {
  for (const auto& m : models_)
    if (m->name == name && (version.empty() || m->version_name == version)) return m.get();
  return nullptr;
}

bool ModelRepository::has_model(const std::string& name) const {
  return std::any_of(models_.begin(), models_.end(), [&](const auto& m) { return m->name == name; });
}

std::vector<const ServedModel*> ModelRepository::versions(const std::string& name) const {
  std::vector<const ServedModel*> out;
  for (const auto& m : models_)
    if (m->name == name) out.push_back(m.get());
  return out;
}

void ModelRepository::stop() {
  for (auto& m : models_) m->batcher->stop();
}

}  // namespace switchyard::serve
