// A pool of infer requests kept busy by a producer, as OpenVINO's AsyncInferQueue:
//
//   switchyard::AsyncInferQueue queue(model, 8);
//   queue.set_callback([](switchyard::InferRequest& r, void* user, std::exception_ptr err) { ... });
//   for (auto& frame : frames) queue.start_async({{"image", frame}}, &frame);  // blocks while all 8 are busy
//   queue.wait_all();
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>

#include "switchyard/engine.h"

namespace switchyard {

class AsyncInferQueue {
 public:
  using Callback = std::function<void(InferRequest& request, void* userdata, std::exception_ptr error)>;

  // jobs: requests in flight; 0 picks twice the model's streams.
  explicit AsyncInferQueue(const CompiledModel& model, size_t jobs = 0);
  ~AsyncInferQueue();
  AsyncInferQueue(const AsyncInferQueue&) = delete;
  AsyncInferQueue& operator=(const AsyncInferQueue&) = delete;

  // Called once per completed job, on a stream thread, before the job's request is reused.
  void set_callback(Callback callback);
  // Waits for an idle request, binds the inputs (no copy: keep them alive until the callback) and starts it.
  void start_async(const std::map<std::string, Tensor>& inputs, void* userdata = nullptr);
  void wait_all();
  bool is_ready() const;  // an idle request is available: start_async will not block
  size_t size() const { return requests_.size(); }
  InferRequest& operator[](size_t i) { return requests_.at(i); }

 private:
  std::vector<InferRequest> requests_;
  std::vector<void*> userdata_;
  std::deque<size_t> idle_;
  std::atomic<size_t> idle_count_{0};  // idle_.size(), readable without the lock
  bool spin_ = false;                  // watch for a free request briefly before sleeping
  std::shared_ptr<const Callback> callback_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
};

}  // namespace switchyard
