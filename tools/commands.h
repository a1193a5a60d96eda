// The `switchyard` CLI: one file per sub-command, wired together in switchyard_main.cpp.
#pragma once

#include <CLI/CLI.hpp>

namespace switchyard::cli {

void add_run_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_ops_command(CLI::App& app);
void add_bench_command(CLI::App& app);

}  // namespace switchyard::cli
