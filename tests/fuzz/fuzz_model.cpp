// libFuzzer target: ONNX model bytes -> import, shape inference, graph passes (incl. MoE fusion and
// dense folding), the auto-batching analysis, kernel construction. Any input must end in a switchyard::Error or a compiled plan: never a crash,
// hang, leak or sanitizer report.
#include <cstddef>
#include <cstdint>
#include <string>

#include "compiler/batch_analysis.h"
#include "compiler/pass_pipeline.h"
#include "onnx/onnx_import.h"
#include "runtime/executor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    switchyard::Model model =
        switchyard::load_onnx_bytes(std::string(reinterpret_cast<const char*>(data), size), "", "fuzz input");
    switchyard::run_graph_passes(model);
    (void)switchyard::rows_independent(*model.graph);
    if (switchyard::unsupported_ops(*model.graph).empty()) switchyard::compile_plan(model.graph);
  } catch (const switchyard::Error&) {
  }
  return 0;
}
