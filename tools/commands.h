// The `switchyard` CLI: one file per sub-command, wired together in switchyard_main.cpp.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "switchyard/engine.h"

namespace switchyard::cli {

void add_run_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_ops_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_serve_command(CLI::App& app);

// The compile flags shared by run, eval and bench: --threads, --no-fuse, --precision, --weight-group,
// --precision-override, --isa.
struct CompileFlags {
  int threads = 0;
  bool no_fuse = false;
  std::string precision = "fp32";
  std::string isa;
  int weight_group = 32;
  std::vector<std::string> overrides;  // NODE=PRECISION

  void add_to(CLI::App* cmd) {
    cmd->add_option("--threads", threads, "threads (0: one per core)");
    cmd->add_flag("--no-fuse", no_fuse, "run the exported graph op by op (no MoE fusion)");
    cmd->add_option("--precision", precision,
                    "MoE experts: fp32 | fp16 (FP16 weights) | bf16 (FP32 sums) | int8 (INT8 weights and activations, VNNI) | "
                    "int4 (INT4 weights, INT8 activations) | int8-weights | int4-weights (weight-only, group-wise scales)")
        ->check(CLI::IsMember({"fp32", "fp16", "bf16", "int8", "int4", "int8-weights", "int4-weights"}));
    cmd->add_option("--weight-group", weight_group, "rows per scale for int4 / int8-weights / int4-weights (default 32)")
        ->check(CLI::Range(1, 4096));
    cmd->add_option("--precision-override", overrides,
                    "NODE=PRECISION: another precision for one node (names: inspect --nodes); repeatable");
    cmd->add_option("--isa", isa, "cap the CPU kernels: portable | avx2 | avx512 | native (default: SWITCHYARD_ISA or native)")
        ->check(CLI::IsMember({"portable", "avx2", "avx512", "native"}));
  }
  void apply(CompileOptions& options) const {
    options.threads = threads;
    options.fuse_moe = !no_fuse;
    options.precision = precision;
    options.weight_group = weight_group;
    options.isa = isa;
    for (const std::string& o : overrides) {
      const auto eq = o.find('=');
      SY_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < o.size(),
               "--precision-override '" + o + "': expected NODE=PRECISION");
      options.precision_overrides[o.substr(0, eq)] = o.substr(eq + 1);
    }
  }
};

}  // namespace switchyard::cli
