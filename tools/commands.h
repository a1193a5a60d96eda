// The `switchyard` CLI: one file per sub-command, wired together in switchyard_main.cpp.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace switchyard::cli {

void add_run_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_ops_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_quantize_command(CLI::App& app);

// --precision and --weight-group, shared by run, eval and bench (see CompileOptions).
inline void add_precision_options(CLI::App* cmd, std::string& precision, int& weight_group) {
  cmd->add_option("--precision", precision,
                  "MoE experts: fp32 | bf16 (FP32 sums) | int8 (INT8 weights and activations, VNNI) | "
                  "int4 (INT4 weights, INT8 activations) | int8-weights | int4-weights (weight-only, group-wise scales)")
      ->check(CLI::IsMember({"fp32", "bf16", "int8", "int4", "int8-weights", "int4-weights"}));
  cmd->add_option("--weight-group", weight_group, "rows per scale for int4 / int8-weights / int4-weights (default 32)")
      ->check(CLI::Range(1, 4096));
}

}  // namespace switchyard::cli
