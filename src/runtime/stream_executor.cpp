#include "runtime/stream_executor.h"

namespace switchyard {

StreamExecutor::StreamExecutor(int streams) {
  for (int i = 0; i < (streams < 1 ? 1 : streams); ++i) threads_.emplace_back([this] { loop(); });
}

StreamExecutor::~StreamExecutor() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  ready_.notify_all();
  for (auto& t : threads_) t.join();
}

void StreamExecutor::submit(std::function<void()> task) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    tasks_.push_back(std::move(task));
    pending_.store(static_cast<int>(tasks_.size()), std::memory_order_release);
    wake = sleeping_ > 0;
  }
  if (wake) ready_.notify_one();  // spinning streams pick the task up without a wake-up
}

void StreamExecutor::loop() {
  for (;;) {
    // Small requests (a few microseconds) would spend more time in wake-ups than computing: look
    // for work for a short while before sleeping.
    for (int spin = 0; spin < 4000 && pending_.load(std::memory_order_acquire) == 0; ++spin) std::this_thread::yield();
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ++sleeping_;
      ready_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
      --sleeping_;
      if (tasks_.empty()) return;  // stopping, and nothing left to run
      task = std::move(tasks_.front());
      tasks_.pop_front();
      pending_.store(static_cast<int>(tasks_.size()), std::memory_order_release);
    }
    task();  // tasks catch their own errors
  }
}

}  // namespace switchyard
