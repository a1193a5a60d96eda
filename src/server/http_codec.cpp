#include "server/http_codec.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>

#include "server/datatype.h"
#include "server/job_builder.h"
#include "switchyard/error.h"

namespace switchyard::serve {
namespace {

using nlohmann::json;

// JSON numbers beyond float's range become +-inf, as a float conversion would (not undefined behaviour).
float to_float(double d) {
  if (std::isfinite(d) && std::fabs(d) > std::numeric_limits<float>::max())
    return d > 0 ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity();
  return static_cast<float>(d);
}

// JSON "data" (flat or nested row-major arrays) into the input's storage.
// Iterative, not recursive: a hostile body may nest arrays a million deep.
void flatten(const json& value, std::vector<const json*>& out) {
  std::vector<std::pair<const json*, size_t>> stack{{&value, 0}};
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (!node->is_array()) {
      out.push_back(node);
      stack.pop_back();
    } else if (next < node->size()) {
      const json* child = &(*node)[next++];
      stack.emplace_back(child, 0);
    } else {
      stack.pop_back();
    }
  }
}

void decode_json_data(const std::vector<const json*>& values, Tensor& dst, const std::string& name) {
  for (size_t i = 0; i < values.size(); ++i) {
    const json& v = *values[i];
    if (dst.dtype() == DType::kBool) {
      SY_CHECK(v.is_boolean(), "input '" + name + "': BOOL data must be true or false");
      static_cast<bool*>(dst.raw())[i] = v.get<bool>();
      continue;
    }
    SY_CHECK(v.is_number(), "input '" + name + "': data value " + std::to_string(i) + " is not a number");
    const bool floating = dst.dtype() == DType::kFloat32 || dst.dtype() == DType::kFloat64 ||
                          dst.dtype() == DType::kFloat16 || dst.dtype() == DType::kBFloat16;
    SY_CHECK(floating || v.is_number_integer(),
             "input '" + name + "': data value " + std::to_string(i) + " is not an integer (datatype " +
                 protocol_datatype(dst.dtype()) + ")");
    if (!floating && dst.dtype() != DType::kInt64 && dst.dtype() != DType::kUInt64) {
      const int64_t x = v.get<int64_t>();
      const bool fits = dst.dtype() == DType::kInt32   ? x >= INT32_MIN && x <= INT32_MAX
                        : dst.dtype() == DType::kInt16  ? x >= INT16_MIN && x <= INT16_MAX
                        : dst.dtype() == DType::kInt8   ? x >= INT8_MIN && x <= INT8_MAX
                        : dst.dtype() == DType::kUInt32 ? x >= 0 && x <= UINT32_MAX
                        : dst.dtype() == DType::kUInt16 ? x >= 0 && x <= UINT16_MAX
                                                        : x >= 0 && x <= UINT8_MAX;
      SY_CHECK(fits, "input '" + name + "': data value " + std::to_string(x) + " is out of range for " +
                         protocol_datatype(dst.dtype()));
    }
    const double d = v.get<double>();
    switch (dst.dtype()) {
      case DType::kFloat32: static_cast<float*>(dst.raw())[i] = to_float(d); break;
      case DType::kFloat64: static_cast<double*>(dst.raw())[i] = d; break;
      case DType::kFloat16: static_cast<uint16_t*>(dst.raw())[i] = float_to_half(to_float(d)); break;
      case DType::kBFloat16: static_cast<uint16_t*>(dst.raw())[i] = float_to_bfloat16(to_float(d)); break;
      case DType::kInt64: static_cast<int64_t*>(dst.raw())[i] = v.get<int64_t>(); break;
      case DType::kUInt64: static_cast<uint64_t*>(dst.raw())[i] = v.get<uint64_t>(); break;
      case DType::kInt32: static_cast<int32_t*>(dst.raw())[i] = static_cast<int32_t>(v.get<int64_t>()); break;
      case DType::kInt16: static_cast<int16_t*>(dst.raw())[i] = static_cast<int16_t>(v.get<int64_t>()); break;
      case DType::kInt8: static_cast<int8_t*>(dst.raw())[i] = static_cast<int8_t>(v.get<int64_t>()); break;
      case DType::kUInt32: static_cast<uint32_t*>(dst.raw())[i] = static_cast<uint32_t>(v.get<int64_t>()); break;
      case DType::kUInt16: static_cast<uint16_t*>(dst.raw())[i] = static_cast<uint16_t>(v.get<int64_t>()); break;
      case DType::kUInt8: static_cast<uint8_t*>(dst.raw())[i] = static_cast<uint8_t>(v.get<int64_t>()); break;
      default: throw Error("input '" + name + "': datatype not readable from JSON");
    }
  }
}

json encode_json_data(const Tensor& t) {
  json data = json::array();
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (t.dtype()) {
      case DType::kBool: data.push_back(static_cast<const bool*>(t.raw())[i]); break;
      case DType::kFloat32: data.push_back(static_cast<const float*>(t.raw())[i]); break;
      case DType::kFloat16: data.push_back(half_to_float(static_cast<const uint16_t*>(t.raw())[i])); break;
      case DType::kBFloat16: data.push_back(bfloat16_to_float(static_cast<const uint16_t*>(t.raw())[i])); break;
      case DType::kFloat64: data.push_back(static_cast<const double*>(t.raw())[i]); break;
      case DType::kUInt64: data.push_back(static_cast<const uint64_t*>(t.raw())[i]); break;
      default: data.push_back(t.as_int64(i)); break;
    }
  }
  return data;
}

bool bool_parameter(const json& owner, const char* key, bool fallback) {
  const auto p = owner.find("parameters");
  if (p == owner.end() || !p->is_object()) return fallback;
  const auto v = p->find(key);
  return v != p->end() && v->is_boolean() ? v->get<bool>() : fallback;
}

int64_t int_parameter(const json& owner, const char* key, int64_t fallback) {
  const auto p = owner.find("parameters");
  if (p == owner.end() || !p->is_object()) return fallback;
  const auto v = p->find(key);
  return v != p->end() && v->is_number_integer() ? v->get<int64_t>() : fallback;
}

const std::string& string_field(const json& owner, const char* key, const std::string& where) {
  const auto v = owner.find(key);
  SY_CHECK(v != owner.end() && v->is_string(), where + ": \"" + key + "\" must be a string");
  return v->get_ref<const std::string&>();
}

}  // namespace

std::string http_error_body(const std::string& message) {
  return json{{"error", message}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

int http_status(JobStatus s) {
  switch (s) {
    case JobStatus::kOk: return 200;
    case JobStatus::kBadRequest: return 400;
    case JobStatus::kUnavailable: return 503;
    case JobStatus::kTimeout: return 504;
  }
  return 500;
}

HttpInferRequest decode_http_infer(const ServedModel& model, const std::string& body, const std::string* header_length) {
  json request;
  size_t header_bytes = body.size();
  if (header_length) {
    const std::string& v = *header_length;
    char* end = nullptr;
    const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
    SY_CHECK(!v.empty() && *end == '\0' && n <= body.size(),
             "Inference-Header-Content-Length " + v + " is not a length within the body of " +
                 std::to_string(body.size()) + " bytes");
    header_bytes = static_cast<size_t>(n);
  }
  try {
    request = json::parse(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(header_bytes));
  } catch (const json::exception& e) {
    throw Error(std::string("malformed JSON request: ") + e.what());
  }
  SY_CHECK(request.is_object(), "the request must be a JSON object");
  const auto inputs = request.find("inputs");
  SY_CHECK(inputs != request.end() && inputs->is_array(), "the request has no \"inputs\" array");
  JobBuilder builder(model);
  size_t binary_offset = header_bytes;
  for (const json& in : *inputs) {
    SY_CHECK(in.is_object(), "each input must be a JSON object");
    const std::string& name = string_field(in, "name", "input");
    const std::string& datatype = string_field(in, "datatype", "input '" + name + "'");
    const auto shape_it = in.find("shape");
    SY_CHECK(shape_it != in.end() && shape_it->is_array(), "input '" + name + "': \"shape\" must be an array");
    Shape shape;
    for (const json& d : *shape_it) {
      SY_CHECK(d.is_number_integer(), "input '" + name + "': shape entries must be integers");
      shape.push_back(d.get<int64_t>());
    }
    const int64_t binary = int_parameter(in, "binary_data_size", -1);
    if (binary >= 0) {
      SY_CHECK(static_cast<uint64_t>(binary) <= body.size() - binary_offset,
               "input '" + name + "': binary_data_size " + std::to_string(binary) + " runs past the end of the body (" +
                   std::to_string(body.size() - binary_offset) + " bytes left)");
      builder.add_input_view(name, datatype, shape, body.data() + binary_offset, static_cast<size_t>(binary));
      binary_offset += static_cast<size_t>(binary);
    } else {
      const auto data = in.find("data");
      SY_CHECK(data != in.end(), "input '" + name + "' has neither \"data\" nor binary_data_size");
      std::vector<const json*> values;
      flatten(*data, values);
      decode_json_data(values, builder.add_input_owned(name, datatype, shape, static_cast<int64_t>(values.size())), name);
    }
  }
  SY_CHECK(binary_offset == body.size(), std::to_string(body.size() - binary_offset) +
                                                  " bytes of the body belong to no input");
  const bool all_binary = bool_parameter(request, "binary_data_output", false);
  std::vector<bool> binary_outputs;
  if (const auto outputs = request.find("outputs"); outputs != request.end()) {
    SY_CHECK(outputs->is_array(), "\"outputs\" must be an array");
    for (const json& out : *outputs) {
      SY_CHECK(out.is_object(), "each requested output must be a JSON object");
      builder.request_output(string_field(out, "name", "output"));
      binary_outputs.push_back(bool_parameter(out, "binary_data", all_binary));
    }
  }
  auto job = builder.finish(int_parameter(request, "timeout", 0));
  binary_outputs.resize(job->outputs.size(), all_binary);
  HttpInferRequest decoded;
  decoded.id = request.contains("id") && request["id"].is_string() ? request["id"].get<std::string>() : "";
  decoded.job = std::move(job);
  decoded.binary_outputs = std::move(binary_outputs);
  return decoded;
}

HttpInferResponse encode_http_infer(const ServedModel& model, const InferJob& job, const JobResult& result,
                                    const std::vector<bool>& binary_outputs, const std::string& id) {
  HttpInferResponse reply;
  reply.status = http_status(result.status);
  if (result.status != JobStatus::kOk) {
    reply.body = http_error_body(result.error);
    reply.json_bytes = reply.body.size();
    return reply;
  }
  json response = {{"model_name", model.name}, {"model_version", model.version_name}};
  if (!id.empty()) response["id"] = id;
  json outputs = json::array();
  std::string binary;
  for (size_t k = 0; k < result.outputs.size(); ++k) {
    const Tensor& t = result.outputs[k];
    json out = {{"name", model.model.outputs()[job.outputs[k]].name},
                {"datatype", protocol_datatype(t.dtype())},
                {"shape", t.shape()}};
    if (k < binary_outputs.size() && binary_outputs[k]) {
      out["parameters"] = {{"binary_data_size", t.nbytes()}};
      binary.append(static_cast<const char*>(t.raw()), t.nbytes());
    } else {
      out["data"] = encode_json_data(t);
    }
    outputs.push_back(std::move(out));
  }
  response["outputs"] = std::move(outputs);
  reply.body = response.dump(-1, ' ', false, json::error_handler_t::replace);
  reply.json_bytes = reply.body.size();
  reply.body += binary;
  return reply;
}

}  // namespace switchyard::serve
