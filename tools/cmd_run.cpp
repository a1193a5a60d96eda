// switchyard run MODEL --inputs IN.npz [--input NAME=FILE.npy ...] [--outputs OUT.npz]
//                      [--image IN.png [--output-image OUT.png] [--expert-map MAP.png]]
#include <fmt/core.h>

#include <filesystem>

#include "commands.h"
#include "io/npy.h"
#include "io/png.h"
#include "switchyard/engine.h"

namespace switchyard::cli {

void add_run_command(CLI::App& app) {
  struct Options {
    std::string model, inputs_npz, outputs_npz, image, output_image, expert_map;
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
  cmd->add_option("--image", opt->image, "PNG picture for the model's image input ([1, 1 or 3, H, W], values 0..1)");
  cmd->add_option("--output-image", opt->output_image, "PNG to write the image output to (default: <image>.out.png here)");
  cmd->add_option("--expert-map", opt->expert_map, "PNG picture of which expert each block of the image went to");
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
    SY_CHECK(opt->image.empty() || feeds.empty(), "--image feeds the model's only input: do not combine it with --inputs/--input");
    SY_CHECK(!opt->image.empty() || (opt->output_image.empty() && opt->expert_map.empty()),
             "--output-image and --expert-map need --image");
    Engine engine;
    CompileOptions options;
    options.memory_limit_bytes = opt->memory_limit_mb << 20;
    opt->compile.apply(options);
    CompiledModel model = engine.compile(opt->model, options);
    InferRequest request = model.create_infer_request();
    if (!opt->image.empty()) {
      SY_CHECK(model.inputs().size() == 1, "--image needs a model with one input, this one has " + std::to_string(model.inputs().size()));
      const auto& in = model.inputs()[0];
      SY_CHECK(in.shape.size() == 4 && (in.shape[1] == 1 || in.shape[1] == 3),
               "--image needs an input [N, 1 or 3, H, W]; '" + in.name + "' is not");
      feeds.emplace_back(in.name, read_png(opt->image, in.shape[1]));
    }
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
    if (!opt->image.empty()) {
      std::string out_png = opt->output_image;
      if (out_png.empty()) out_png = std::filesystem::path(opt->image).stem().string() + ".out.png";
      write_png(out_png, request.output(0));
      fmt::print("wrote {} ({})\n", out_png, shape_str(request.output(0).shape()));
      if (!opt->expert_map.empty()) {
        auto maps = request.block_experts();
        SY_CHECK(!maps.empty(), "--expert-map: this model has no spatial MoE layer (see `switchyard inspect`)");
        write_expert_map(opt->expert_map, maps[0].second, request.output(0));  // over the upscaled picture
        fmt::print("wrote {} (expert of each block of {})\n", opt->expert_map, maps[0].first);
      }
    }
  });
}

}  // namespace switchyard::cli
