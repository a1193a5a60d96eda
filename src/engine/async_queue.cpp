#include "switchyard/async_queue.h"

#include <thread>

#include "core/spin.h"

namespace switchyard {

AsyncInferQueue::AsyncInferQueue(const CompiledModel& model, size_t jobs) {
  // Spinning only pays when a core is left over by the model's streams; otherwise it would take
  // that core from the computation.
  spin_ = static_cast<unsigned>(model.streams() * model.threads_per_stream()) < std::thread::hardware_concurrency();
  if (jobs == 0) jobs = static_cast<size_t>(2 * model.streams());
  userdata_.assign(jobs, nullptr);
  for (size_t i = 0; i < jobs; ++i) {
    requests_.push_back(model.create_infer_request());
    idle_.push_back(i);
    idle_count_.store(idle_.size(), std::memory_order_relaxed);
    requests_.back().set_callback([this, i](std::exception_ptr error) {
      std::shared_ptr<const Callback> callback;  // a pointer copy: copying the function could allocate
      void* userdata;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        callback = callback_;
        userdata = userdata_[i];
      }
      if (callback && *callback) (*callback)(requests_[i], userdata, error);
      std::lock_guard<std::mutex> lock(mutex_);  // notify under the lock: the queue may be destroyed right after
      idle_.push_back(i);
      idle_count_.store(idle_.size(), std::memory_order_release);
      changed_.notify_all();
    });
  }
}

AsyncInferQueue::~AsyncInferQueue() { wait_all(); }

void AsyncInferQueue::set_callback(Callback callback) {
  auto shared = std::make_shared<const Callback>(std::move(callback));
  std::lock_guard<std::mutex> lock(mutex_);
  callback_ = std::move(shared);
}

void AsyncInferQueue::start_async(const std::map<std::string, Tensor>& inputs, void* userdata) {
  size_t i;
  // Completions come every few microseconds when requests are small: watch for one briefly before
  // sleeping, since a wake-up from the condition variable can cost more than the request itself.
  if (spin_) spin_until([this] { return idle_count_.load(std::memory_order_acquire) != 0; }, 50);
  {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return !idle_.empty(); });
    i = idle_.front();
    idle_.pop_front();
    idle_count_.store(idle_.size(), std::memory_order_release);
    userdata_[i] = userdata;
  }
  try {
    InferRequest& request = requests_[i];
    // The previous job's request may still be finishing its callback bookkeeping: wait for it.
    request.wait_for(std::chrono::hours(24));
    for (const auto& [name, tensor] : inputs) request.set_input(name, tensor);
    request.start_async();
  } catch (...) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      idle_.push_back(i);
      idle_count_.store(idle_.size(), std::memory_order_release);
    }
    changed_.notify_all();
    throw;
  }
}

void AsyncInferQueue::wait_all() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return idle_.size() == requests_.size(); });
  lock.unlock();
  for (auto& r : requests_) r.wait_for(std::chrono::hours(24));
}

bool AsyncInferQueue::is_ready() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return !idle_.empty();
}

}  // namespace switchyard
