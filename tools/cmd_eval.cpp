// switchyard eval MODEL --dataset fashion-mnist: top-1 accuracy on the 10,000 test images and
// images/s; --latency adds batch-1 latency percentiles through the C++ API.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "commands.h"
#include "io/idx.h"
#include "switchyard/engine.h"

namespace switchyard::cli {

namespace {

using Clock = std::chrono::steady_clock;

float preprocess_scale(const CompiledModel& model) {
  auto it = model.metadata().find("switchyard.preprocess");
  if (it == model.metadata().end()) return 1.f / 255.f;
  auto pos = it->second.find("scale=");
  if (pos == std::string::npos) return 1.f / 255.f;
  // The metadata comes from the model file: anything but a positive number is reported, not thrown raw.
  char* end = nullptr;
  const char* text = it->second.c_str() + pos + 6;
  float scale = std::strtof(text, &end);
  SY_CHECK(end != text && std::isfinite(scale) && scale > 0.f,
           "model metadata switchyard.preprocess: scale '" + std::string(text) + "' is not a positive number");
  return scale;
}

Shape batch_shape(const PortInfo& in, int64_t batch) {
  if (in.rank_known && in.shape.size() == 4) return {batch, 1, 28, 28};
  if (in.rank_known && in.shape.size() == 3) return {batch, 28, 28};
  return {batch, 784};
}

}  // namespace

void add_eval_command(CLI::App& app) {
  struct Options {
    std::string model, dataset = "fashion-mnist", data_dir = "/usr/share/datasets/fashion-mnist";
    CompileFlags compile;
    int64_t batch = 64;
    bool latency = false;
    int64_t limit = 0;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("eval", "Top-1 accuracy and speed on a dataset's test split");
  cmd->add_option("model", opt->model, "ONNX classifier")->required();
  cmd->add_option("--dataset", opt->dataset, "dataset name")->check(CLI::IsMember({"fashion-mnist"}));
  cmd->add_option("--data-dir", opt->data_dir, "folder with the IDX files");
  cmd->add_option("--batch", opt->batch, "batch size")->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--limit", opt->limit, "evaluate only the first N images");
  opt->compile.add_to(cmd);
  cmd->add_flag("--latency", opt->latency, "also measure batch-1 latency and batch-64 throughput");
  cmd->callback([opt] {
    Tensor images = read_idx(opt->data_dir + "/t10k-images-idx3-ubyte.gz");
    Tensor labels = read_idx(opt->data_dir + "/t10k-labels-idx1-ubyte.gz");
    SY_CHECK(images.rank() == 3 && images.dim(1) == 28 && images.dim(2) == 28 && labels.numel() == images.dim(0),
             "unexpected Fashion-MNIST layout in " + opt->data_dir);
    int64_t total = images.dim(0);
    if (opt->limit > 0) total = std::min(total, opt->limit);
    Engine engine;
    CompileOptions options;
    opt->compile.apply(options);
    CompiledModel model = engine.compile(opt->model, options);
    SY_CHECK(model.inputs().size() == 1 && model.outputs().size() >= 1, "eval expects one input and a logits output");
    const float scale = preprocess_scale(model);
    Tensor pixels(DType::kFloat32, {total, 784});
    for (int64_t i = 0; i < total * 784; ++i) pixels.data<float>()[i] = images.data<uint8_t>()[i] * scale;

    InferRequest request = model.create_infer_request();
    const std::string input = model.inputs()[0].name;
    int64_t correct = 0;
    // Warm-up: one call per batch shape used below (first calls allocate buffers and JIT-compile GEMMs).
    for (int64_t n : {std::min(opt->batch, total), total % opt->batch}) {
      if (n == 0) continue;
      request.set_input(input, Tensor::wrap(DType::kFloat32, batch_shape(model.inputs()[0], n), pixels.data<float>()));
      request.infer();
    }
    auto start = Clock::now();
    for (int64_t b0 = 0; b0 < total; b0 += opt->batch) {
      const int64_t n = std::min(opt->batch, total - b0);
      request.set_input(input, Tensor::wrap(DType::kFloat32, batch_shape(model.inputs()[0], n), pixels.data<float>() + b0 * 784));
      request.infer();
      const Tensor& logits = request.output(0);
      SY_CHECK(logits.rank() == 2 && logits.dim(0) == n, "logits have shape " + shape_str(logits.shape()));
      const int64_t classes = logits.dim(1);
      for (int64_t i = 0; i < n; ++i) {
        const float* row = logits.data<float>() + i * classes;
        int64_t best = std::max_element(row, row + classes) - row;
        correct += best == labels.data<uint8_t>()[b0 + i];
      }
    }
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    fmt::print("model:      {}\nkernels:    {}\n", opt->model, kernel_isa());
    fmt::print("dataset:    {} test split, {} images\n", opt->dataset, total);
    fmt::print("accuracy:   {:.4f} ({} / {} correct)\n", static_cast<double>(correct) / static_cast<double>(total), correct, total);
    fmt::print("throughput: {:.0f} images/s at batch {} ({} threads)\n", static_cast<double>(total) / secs, opt->batch,
               opt->compile.threads > 0 ? opt->compile.threads : static_cast<int>(std::thread::hardware_concurrency()));
    if (!opt->latency) return;

    // Batch-1 latency: warm up, then time individual calls over the test images.
    std::vector<double> us;
    const int64_t calls = 20000;
    for (int64_t i = 0; i < calls + 1000; ++i) {
      const int64_t img = i % total;
      auto t0 = Clock::now();
      request.set_input(input, Tensor::wrap(DType::kFloat32, batch_shape(model.inputs()[0], 1), pixels.data<float>() + img * 784));
      request.infer();
      if (i >= 1000) us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    std::sort(us.begin(), us.end());
    auto pct = [&](double p) { return us[static_cast<size_t>(p * static_cast<double>(us.size() - 1))]; };
    fmt::print("batch-1 latency: p50 {:.1f} us, p90 {:.1f} us, p99 {:.1f} us ({} calls)\n", pct(0.5), pct(0.9), pct(0.99), calls);
    // Batch-64 throughput over a fixed duration.
    const int64_t b = std::min<int64_t>(64, total);
    int64_t done = 0;
    auto t0 = Clock::now();
    while (std::chrono::duration<double>(Clock::now() - t0).count() < 2.0) {
      const int64_t off = (done / b * b) % (total - b + 1);
      request.set_input(input, Tensor::wrap(DType::kFloat32, batch_shape(model.inputs()[0], b), pixels.data<float>() + off * 784));
      request.infer();
      done += b;
    }
    const double s64 = std::chrono::duration<double>(Clock::now() - t0).count();
    fmt::print("batch-64 throughput: {:.0f} images/s\n", static_cast<double>(done) / s64);
  });
}

}  // namespace switchyard::cli
