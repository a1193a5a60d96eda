// libFuzzer target: KServe v2 REST infer bodies for the seed classifier (src/server/http_codec.h): a first
// line "<digits>\n" is taken as the Inference-Header-Content-Length header, the rest is the body. A
// request that decodes is run and its answer encoded, as the server would.
#include <cstddef>
#include <cstdint>
#include <string>

#include "server/http_codec.h"

namespace {

switchyard::serve::ServedModel& seed() {
  static switchyard::serve::ServedModel* model = [] {
    auto* m = new switchyard::serve::ServedModel;
    m->name = "seed";
    m->version_name = "1";
    switchyard::CompileOptions options;
    options.threads = 1;
    m->model = switchyard::Engine().compile("models/seed_classifier.onnx", options);
    m->max_batch_size = 8;
    m->batching.enabled = true;
    m->batching.max_batch_size = 8;
    return m;
  }();
  return *model;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  std::string length;
  const size_t newline = body.find('\n');
  const bool has_length = newline != std::string::npos && newline > 0 && newline < 12 &&
                          body.find_first_not_of("0123456789") == newline;
  if (has_length) {
    length = body.substr(0, newline);
    body.erase(0, newline + 1);
  }
  try {
    auto request = switchyard::serve::decode_http_infer(seed(), body, has_length ? &length : nullptr);
    switchyard::InferRequest infer = seed().model.create_infer_request();
    // Binary inputs view the body at any offset: the batcher copies them into aligned buffers, so does this.
    const switchyard::Tensor image = request.job->inputs[0].clone();
    infer.set_input("image", image);
    infer.infer();
    switchyard::serve::JobResult result;
    for (size_t o : request.job->outputs) result.outputs.push_back(infer.output(o));
    switchyard::serve::encode_http_infer(seed(), *request.job, result, request.binary_outputs, request.id);
  } catch (const switchyard::Error&) {
  }
  return 0;
}
