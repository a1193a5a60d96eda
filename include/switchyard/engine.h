// Public C++ API: compile an ONNX model, create infer requests, run them.
//
//   switchyard::Engine engine;
//   auto model = engine.compile("model.onnx", {.threads = 2});
//   auto request = model.create_infer_request();
//   request.set_input("image", switchyard::Tensor::wrap(DType::kFloat32, {1, 1, 28, 28}, pixels));
//   request.infer();
//   const switchyard::Tensor& logits = request.output("logits");
#pragma once

#include <chrono>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "switchyard/error.h"
#include "switchyard/tensor.h"

namespace switchyard {

enum class PerformanceHint {
  kLatency,     // one stream: every request gets all the threads
  kThroughput,  // several streams (one per core by default) run requests side by side
};

struct CompileOptions {
  int threads = 0;          // total threads; 0: one per core
  bool fuse_moe = true;     // fuse exported MoE routing subgraphs into one sparse operator
  PerformanceHint hint = PerformanceHint::kLatency;
  int streams = 0;          // parallel streams for async requests; 0: chosen by the hint
  // MoE experts: fp32 | fp16 (FP16 weights, FP32 arithmetic) | bf16 (BF16 products, FP32 sums) |
  // int4 (int4-weights' codes times INT8 activations) | int8 (INT8 weights per column, activations
  // quantized per row at run time, INT32 sums: VNNI) | int8-weights | int4-weights (weight-only, FP16
  // scales per weight_group rows and column, dequantized in the kernel). Applies to the MoE experts and
  // to MatMul / Gemm layers with constant weights; routers (fused or not), activations and every other
  // operator stay FP32.
  std::string precision = "fp32";
  int weight_group = 32;  // rows of a weight column sharing one scale in int4 / int8-weights / int4-weights
  // Per-layer precisions: node name (after fusion, as `switchyard inspect --nodes` lists them, e.g.
  // "moe_fused_/moe/TopK") -> precision, overriding `precision` for that node. Unknown names are an error.
  std::map<std::string, std::string> precision_overrides;
  // Ceiling on the memory of the compiled model: weights, plus each request's buffers (0: none).
  // Exceeding it is a clear error at compile or infer time, never an out-of-memory kill.
  size_t memory_limit_bytes = 0;
  // Auto-batching of async requests: a stream that finds several compatible requests queued runs
  // them stacked along dim 0 as one batch (never waiting for more to arrive). Only for models whose
  // rows are provably independent (see CompiledModel::auto_batch_note). -1: on with the throughput
  // hint (up to 64 requests), off with the latency hint; 0 or 1: off; N: up to N requests.
  int auto_batch = -1;
  // Caps the CPU kernels: "portable" | "avx2" | "avx512" | "native" (the best this CPU runs); "" keeps
  // SWITCHYARD_ISA or native. Never above what the CPU runs. Process-wide (the kernel table is one per
  // process): for tests and benchmarks that compare ISAs, not for mixing ISAs in one service.
  std::string isa;
};

// The ISA the CPU kernels run with now: "avx512", "avx2" or "portable".
std::string kernel_isa();

// Counters of auto-batching since compile.
struct AutoBatchStats {
  uint64_t batched_runs = 0;       // runs that stacked two or more requests
  uint64_t batched_requests = 0;   // requests served by those runs
};

PerformanceHint parse_performance_hint(const std::string& name);  // "latency" | "throughput"

// Declared input or output of a model: -1 marks a dynamic dimension (its name is in dim_names).
struct PortInfo {
  std::string name;
  DType dtype = DType::kUndefined;
  std::vector<int64_t> shape;
  std::vector<std::string> dim_names;
  bool rank_known = false;
};

struct CompiledModelImpl;
struct InferRequestImpl;

class InferRequest {
 public:
  InferRequest(InferRequest&&) noexcept;
  InferRequest& operator=(InferRequest&&) noexcept;
  ~InferRequest();

  // Binds an input without copying: the caller keeps the memory alive until infer() returns.
  void set_input(const std::string& name, const Tensor& tensor);
  // Runs the model; throws switchyard::Error on invalid inputs or failures (the request stays usable).
  void infer();
  // Queues the request on one of the compiled model's streams and returns at once. The inputs'
  // memory must stay alive until the request completes. Throws if the request is still running.
  void start_async();
  // Waits for the request started by start_async(); rethrows its error, if any.
  void wait();
  // Waits at most `timeout`; true if the request has completed (wait() then returns at once).
  bool wait_for(std::chrono::milliseconds timeout);
  // Called on the stream's thread when an async run ends (null, or the error it ended with).
  void set_callback(std::function<void(std::exception_ptr)> callback);
  // Output of the last infer(); owned by the request and valid until the next infer().
  const Tensor& output(const std::string& name) const;
  const Tensor& output(size_t index) const;
  // Hands output `index` of the last infer() over to the caller without copying: the request gives
  // that buffer up and allocates a new one on its next run (one allocation per call, as runtimes that
  // return fresh outputs do). Outputs that are views of inputs or constants come back as copies.
  Tensor take_output(size_t index);
  // Per-expert token counts of the last infer(), one entry per fused MoE layer (expert-load telemetry).
  // For a request that ran stacked with others (auto-batching), the counts of that whole batch.
  // Spatial MoE layers count tiles (image blocks) instead of tokens.
  std::vector<std::pair<std::string, Tensor>> expert_counts() const;
  // Per spatial MoE layer of the last infer(): each image block's (highest-weighted) expert, int64
  // [N, H / block, W / block], -1 where no expert runs.
  std::vector<std::pair<std::string, Tensor>> block_experts() const;

 private:
  friend class CompiledModel;
  explicit InferRequest(std::unique_ptr<InferRequestImpl> impl);
  std::unique_ptr<InferRequestImpl> impl_;
};

class CompiledModel {
 public:
  const std::vector<PortInfo>& inputs() const;
  const std::vector<PortInfo>& outputs() const;
  const std::map<std::string, std::string>& metadata() const;
  // What compilation did: fused MoE layers, and why candidates were not fused.
  const std::vector<std::string>& compile_notes() const;
  int streams() const;             // parallel streams for async requests
  int threads_per_stream() const;  // threads each request computes with
  int auto_batch() const;                 // most requests stacked per run; 1: auto-batching off
  const std::string& auto_batch_note() const;  // why it is off, if it is
  AutoBatchStats auto_batch_stats() const;
  InferRequest create_infer_request() const;
  // Convenience: one call with a fresh request; outputs are copies owned by the caller.
  std::map<std::string, Tensor> run(const std::map<std::string, Tensor>& inputs) const;

 private:
  friend class Engine;
  std::shared_ptr<const CompiledModelImpl> impl_;
};

class Engine {
 public:
  CompiledModel compile(const std::string& model_path, const CompileOptions& options = {}) const;
  CompiledModel compile_bytes(const std::string& model_bytes, const CompileOptions& options = {}) const;
};

// Operators Switchyard implements, as "domain::Op".
std::vector<std::string> supported_operators();

}  // namespace switchyard
