// Server metrics in Prometheus' text exposition format (version 0.0.4). The names follow Triton's
// (nv_inference_*: counters of requests, inferences, executions and cumulative durations, pending
// requests) and OpenVINO Model Server's (ovms_*: latency histograms), plus Switchyard's own: executed
// batch sizes and the tokens routed to each expert of every fused MoE layer.
//
// Debian ships no prometheus-cpp, and the text format is a few lines of output (no parsing), so the
// counters are plain atomics: updated lock-free by the workers, read when /metrics is scraped.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace switchyard::serve {

// Cumulative histogram with fixed upper bounds (Prometheus "le" buckets, +Inf implied).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  // Appends the _bucket/_sum/_count samples of one label set (`labels`: `model="a",version="1"`).
  void write(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative; the last is +Inf
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0.0};
};

// The counters of one served model version.
struct ModelMetrics {
  ModelMetrics();
  std::atomic<uint64_t> request_success{0};
  std::atomic<uint64_t> request_failure{0};
  std::atomic<uint64_t> inference_count{0};   // rows inferred (a request of batch 4 counts 4)
  std::atomic<uint64_t> exec_count{0};        // model executions (one per formed batch)
  std::atomic<uint64_t> request_duration_us{0};
  std::atomic<uint64_t> queue_duration_us{0};
  std::atomic<uint64_t> compute_infer_duration_us{0};
  std::atomic<int64_t> pending_requests{0};   // queued or executing
  Histogram request_us;                       // arrival at the model to response ready
  Histogram queue_us;                         // waiting for a batch / a free execution slot
  Histogram compute_us;                       // model execution of the batch the request ran in
  Histogram batch_size;                       // rows per execution

  void record_failure() { request_failure.fetch_add(1, std::memory_order_relaxed); }
};

// Tokens (or image blocks) routed to each expert of one fused MoE layer, since start.
struct ExpertLoad {
  std::string layer;
  std::vector<uint64_t> tokens;  // per expert
};

struct MetricsSource {
  std::string model;
  std::string version;
  const ModelMetrics* metrics = nullptr;
  std::vector<ExpertLoad> experts;
};

// The whole /metrics page: every family once, with one sample set per model version.
std::string render_metrics(const std::vector<MetricsSource>& sources);

}  // namespace switchyard::serve
