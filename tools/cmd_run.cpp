// switchyard run MODEL --inputs IN.npz [--input NAME=FILE.npy ...] [--outputs OUT.npz]
#include <fmt/core.h>

#include "commands.h"
#include "io/npy.h"
#include "switchyard/engine.h"

namespace switchyard::cli {

void add_run_command(CLI::App& app) {
  struct Options {
    std::string model, inputs_npz, outputs_npz;
    CompileFlags compile;
    std::vector<std::string> input_files;
    bool expert_stats = false;
    size_t memory_limit_mb = 0;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("run", "Run a model on NumPy inputs and write its outputs");
  cmd->add_option("model", opt->model, "ONNX model file")->required();
  cmd->add_option("--inputs", opt->inputs_npz, ".npz holding one array per model input (by name)");
  cmd->add_option("--input", opt->input_files, "NAME=FILE.npy for one input (repeatable)");
  cmd->add_option("--outputs", opt->outputs_npz, ".npz to write every output to, under its name");
  cmd->add_flag("--expert-stats", opt->expert_stats, "print how many tokens each expert of each fused MoE layer got");
  opt->compile.add_to(cmd);
  cmd->add_option("--memory-limit", opt->memory_limit_mb, "memory ceiling in MiB for weights + buffers (0: none)");
  cmd->callback([opt] {
    std::vector<std::pair<std::string, Tensor>> feeds;
    if (!opt->inputs_npz.empty()) feeds = read_npz(opt->inputs_npz);
    for (const auto& spec : opt->input_files) {
      auto eq = spec.find('=');
      SY_CHECK(eq != std::string::npos && eq > 0, "--input expects NAME=FILE.npy, got '" + spec + "'");
      feeds.emplace_back(spec.substr(0, eq), read_npy(spec.substr(eq + 1)));
    }
    Engine engine;
    CompileOptions options;
    options.memory_limit_bytes = opt->memory_limit_mb << 20;
    opt->compile.apply(options);
    CompiledModel model = engine.compile(opt->model, options);
    InferRequest request = model.create_infer_request();
    for (const auto& [name, t] : feeds) request.set_input(name, t);
    request.infer();
    std::vector<std::pair<std::string, Tensor>> outs;
    for (size_t i = 0; i < model.outputs().size(); ++i) {
      const Tensor& t = request.output(i);
      fmt::print("{}: {} {}\n", model.outputs()[i].name, dtype_name(t.dtype()), shape_str(t.shape()));
      outs.emplace_back(model.outputs()[i].name, t);
    }
    if (opt->expert_stats) {
      auto layers = request.expert_counts();
      if (layers.empty()) fmt::print("expert load: no fused MoE layer in this model\n");
      for (const auto& [layer, counts] : layers) {
        int64_t total = 0;
        for (int64_t e = 0; e < counts.numel(); ++e) total += counts.data<int64_t>()[e];
        fmt::print("expert load of {} ({} routed token slots):\n", layer, total);
        for (int64_t e = 0; e < counts.numel(); ++e)
          fmt::print("  expert {:>3}: {:>8} ({:5.1f}%)\n", e, counts.data<int64_t>()[e],
                     total ? 100.0 * static_cast<double>(counts.data<int64_t>()[e]) / static_cast<double>(total) : 0.0);
      }
    }
    if (!opt->outputs_npz.empty()) write_npz(opt->outputs_npz, outs);
  });
}

}  // namespace switchyard::cli
