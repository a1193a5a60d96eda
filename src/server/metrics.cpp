#include "server/metrics.h"

#include <cstdio>
#include <functional>

namespace switchyard::serve {
namespace {

// Microsecond buckets from 10 µs to 10 s; batch-size buckets by powers of two.
std::vector<double> latency_bounds_us() {
  return {10, 25, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 25000, 50000, 100000, 250000, 1e6, 1e7};
}
std::vector<double> batch_bounds() { return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}; }

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Prometheus label values escape backslash, double quote and newline.
std::string escape_label(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string model_labels(const MetricsSource& s) {
  return "model=\"" + escape_label(s.model) + "\",version=\"" + escape_label(s.version) + "\"";
}

void family(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

void Histogram::write(std::string& out, const std::string& name, const std::string& labels) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    const std::string le = i < bounds_.size() ? number(bounds_[i]) : "+Inf";
    out += name + "_bucket{" + labels + ",le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_sum{" + labels + "} " + number(sum_.load(std::memory_order_relaxed)) + "\n";
  out += name + "_count{" + labels + "} " + std::to_string(count_.load(std::memory_order_relaxed)) + "\n";
}

ModelMetrics::ModelMetrics()
    : request_us(latency_bounds_us()), queue_us(latency_bounds_us()), compute_us(latency_bounds_us()),
      batch_size(batch_bounds()) {}

std::string render_metrics(const std::vector<MetricsSource>& sources) {
  std::string out;
  using Field = std::function<double(const ModelMetrics&)>;
  struct Scalar {
    const char* name;
    const char* type;
    const char* help;
    Field value;
  };
  const Scalar scalars[] = {
      {"nv_inference_request_success", "counter", "Number of successful inference requests",
       [](const ModelMetrics& m) { return double(m.request_success.load()); }},
      {"nv_inference_request_failure", "counter", "Number of failed inference requests",
       [](const ModelMetrics& m) { return double(m.request_failure.load()); }},
      {"nv_inference_count", "counter", "Number of inferences performed (a request of batch N counts N)",
       [](const ModelMetrics& m) { return double(m.inference_count.load()); }},
      {"nv_inference_exec_count", "counter", "Number of model executions (batches) performed",
       [](const ModelMetrics& m) { return double(m.exec_count.load()); }},
      {"nv_inference_request_duration_us", "counter", "Cumulative inference request duration in microseconds",
       [](const ModelMetrics& m) { return double(m.request_duration_us.load()); }},
      {"nv_inference_queue_duration_us", "counter", "Cumulative inference queuing duration in microseconds",
       [](const ModelMetrics& m) { return double(m.queue_duration_us.load()); }},
      {"nv_inference_compute_infer_duration_us", "counter", "Cumulative compute inference duration in microseconds",
       [](const ModelMetrics& m) { return double(m.compute_infer_duration_us.load()); }},
      {"nv_inference_pending_request_count", "gauge", "Instantaneous number of pending requests awaiting execution",
       [](const ModelMetrics& m) { return double(m.pending_requests.load()); }},
  };
  for (const Scalar& s : scalars) {
    family(out, s.name, s.type, s.help);
    for (const MetricsSource& src : sources)
      out += std::string(s.name) + "{" + model_labels(src) + "} " + number(s.value(*src.metrics)) + "\n";
  }
  struct Hist {
    const char* name;
    const char* help;
    const Histogram ModelMetrics::*field;
  };
  const Hist hists[] = {
      {"ovms_request_time_us", "Processing time of requests to a model, arrival to response ready",
       &ModelMetrics::request_us},
      {"ovms_wait_for_infer_req_time_us", "Time a request waits in the queue for its batch",
       &ModelMetrics::queue_us},
      {"ovms_inference_time_us", "Model execution time of the batch a request ran in", &ModelMetrics::compute_us},
      {"switchyard_batch_size", "Rows per model execution (dynamic batches)", &ModelMetrics::batch_size},
  };
  for (const Hist& h : hists) {
    family(out, h.name, "histogram", h.help);
    for (const MetricsSource& src : sources) ((*src.metrics).*(h.field)).write(out, h.name, model_labels(src));
  }
  family(out, "switchyard_expert_tokens_total", "counter",
         "Tokens (image blocks for spatial MoE) routed to each expert of each fused MoE layer");
  for (const MetricsSource& src : sources)
    for (const ExpertLoad& load : src.experts)
      for (size_t e = 0; e < load.tokens.size(); ++e)
        out += "switchyard_expert_tokens_total{" + model_labels(src) + ",layer=\"" + escape_label(load.layer) +
               "\",expert=\"" + std::to_string(e) + "\"} " + std::to_string(load.tokens[e]) + "\n";
  return out;
}

}  // namespace switchyard::serve
