// switchyard quantize: static INT8 post-training quantization into QDQ ONNX. The work is ONNX
// Runtime's quantizer, driven by tools/quantize.py; this command runs that script with the same
// arguments (python3, or $SWITCHYARD_PYTHON; the script from the source tree, or
// $SWITCHYARD_QUANTIZE_SCRIPT).
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "commands.h"
#include "switchyard/error.h"

#ifndef SWITCHYARD_QUANTIZE_SCRIPT
#define SWITCHYARD_QUANTIZE_SCRIPT "tools/quantize.py"
#endif

namespace switchyard::cli {

void add_quantize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("quantize", "static INT8 quantization (QDQ ONNX) with calibration; --help for options");
  cmd->prefix_command();  // every argument goes to the script, --help included
  cmd->set_help_flag();
  cmd->callback([cmd] {
    const char* python = std::getenv("SWITCHYARD_PYTHON");
    const char* script = std::getenv("SWITCHYARD_QUANTIZE_SCRIPT");
    std::vector<std::string> args = {python ? python : "python3", script ? script : SWITCHYARD_QUANTIZE_SCRIPT};
    for (const auto& a : cmd->remaining()) args.push_back(a);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    throw Error("quantize: cannot run " + args[0] + " " + args[1] + ": " + std::strerror(errno));
  });
}

}  // namespace switchyard::cli
