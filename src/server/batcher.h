// Dynamic batching of one served model version, as Triton's dynamic batcher: requests of many clients
// wait in one bounded queue; each execution slot (one per stream of the compiled model) takes the
// queued requests that fit (same shapes past dim 0, at most max_batch_size rows), stacks them along
// dim 0 into its own buffers, runs the model once and hands each request its rows of the outputs.
// Stacking is only enabled when the engine's batch analysis proved the rows independent.
//
// Who executes: with max_queue_delay 0 (the default), the thread that submits a request runs it at
// once if a slot is idle, and keeps the slot while requests queued meanwhile remain, running them as
// the next batches: no hand-over to another thread, so a lone request pays no wake-up, and under load
// the queue fills while a batch runs, which is what forms the batches. With a delay, worker threads
// (one per slot) wait up to that delay for fuller batches.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/metrics.h"
#include "switchyard/engine.h"

namespace switchyard::serve {

using Clock = std::chrono::steady_clock;

enum class JobStatus {
  kOk,
  kBadRequest,   // the request's inputs made the model fail (HTTP 400, gRPC INVALID_ARGUMENT)
  kUnavailable,  // queue full or server stopping (HTTP 503, gRPC UNAVAILABLE)
  kTimeout,      // its deadline passed while it waited (HTTP 504, gRPC DEADLINE_EXCEEDED)
};

struct JobResult {
  JobStatus status = JobStatus::kOk;
  std::string error;
  // The requested outputs, in the job's order: views of the execution's buffers, valid only during the
  // done() call (serialise them there).
  std::vector<Tensor> outputs;
};

struct InferJob {
  // One per model input, in the model's order. They view request memory (any alignment: the batcher
  // copies them into its own buffers) that must stay alive until done() is called.
  std::vector<Tensor> inputs;
  std::vector<size_t> outputs;  // indices of the model outputs to return
  int64_t rows = 1;             // dim 0 of the inputs when batching; 1 otherwise
  Clock::time_point arrival = Clock::now();
  Clock::time_point deadline = Clock::time_point::max();
  // Called exactly once: on the thread that executes the job's batch, possibly inside submit().
  std::function<void(InferJob& job, const JobResult& result)> done;
};

struct BatchingConfig {
  bool enabled = false;           // stack requests of different clients into one execution
  int64_t max_batch_size = 1;     // rows per execution (and per request) when enabled
  std::vector<int64_t> preferred_batch_sizes;
  int64_t max_queue_delay_us = 0; // how long the oldest request may wait for a fuller batch
  size_t max_queue_size = 1024;   // queued requests beyond this are refused (503)
};

class DynamicBatcher {
 public:
  DynamicBatcher(CompiledModel model, BatchingConfig config, ModelMetrics& metrics);
  ~DynamicBatcher();
  DynamicBatcher(const DynamicBatcher&) = delete;
  DynamicBatcher& operator=(const DynamicBatcher&) = delete;

  // Queues a job, and (execute_now) may run it and others queued on the calling thread before returning.
  // An event loop that reads many requests before executing passes execute_now = false and calls
  // run_queued() once nothing more is ready: the requests read meanwhile then run as one batch. False
  // if the queue is full or the batcher stopped: the job is untouched (the caller answers 503).
  bool submit(std::unique_ptr<InferJob>& job, bool execute_now = true);
  // Runs the queued jobs on the calling thread if an execution slot is idle (inline mode); otherwise the
  // thread holding a slot, or a worker, runs them.
  void run_queued();
  // Stops taking jobs, lets every job already queued run, waits for the executions to end.
  void stop();
  const BatchingConfig& config() const { return config_; }
  // Tokens per expert per fused MoE layer, summed over the workers since start.
  std::vector<ExpertLoad> expert_load() const;

 private:
  struct Slot;
  void run_worker(Slot& slot);
  // Runs batches from the queue on `slot` until the queue is empty, then returns the slot (lock held on
  // entry and exit, released while executing).
  void drain(Slot& slot, std::unique_lock<std::mutex>& lock);
  // Removes from the queue the jobs of the next execution (lock held).
  void take_batch(std::vector<std::unique_ptr<InferJob>>& batch);
  void execute(Slot& slot, std::vector<std::unique_ptr<InferJob>>& batch);
  // Runs `count` jobs starting at `first` as one execution; false (nothing answered) if the model threw.
  bool execute_stacked(Slot& slot, std::unique_ptr<InferJob>* first, size_t count, std::string& error);
  void finish(InferJob& job, const JobResult& result);

  CompiledModel model_;
  BatchingConfig config_;
  ModelMetrics& metrics_;
  mutable std::mutex mutex_;
  std::condition_variable queued_;
  std::deque<std::unique_ptr<InferJob>> queue_;
  int64_t queued_rows_ = 0;
  bool stopping_ = false;
  bool run_inline_ = true;                // max_queue_delay 0: submitters execute
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<Slot*> idle_slots_;         // inline mode: slots no thread is executing on
  std::condition_variable slot_returned_;
  std::vector<std::thread> workers_;      // delay mode: one per slot
};

}  // namespace switchyard::serve
