#include "runtime/stream_executor.h"

#include <algorithm>

#include "core/spin.h"

namespace switchyard {

namespace {
constexpr int kSpinMicros = 50;  // how long an idle stream watches the queue before sleeping
}  // namespace


StreamExecutor::StreamExecutor(int streams, size_t max_batch, Runner runner)
    : runner_(std::move(runner)), max_batch_(std::max<size_t>(1, max_batch)) {
  for (int i = 0; i < (streams < 1 ? 1 : streams); ++i) threads_.emplace_back([this, i] { loop(i); });
}

StreamExecutor::~StreamExecutor() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  ready_.notify_all();
  for (auto& t : threads_) t.join();
}

void StreamExecutor::submit(Job job) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(job);
    pending_.store(static_cast<int>(jobs_.size()), std::memory_order_release);
    wake = sleeping_ > 0;
  }
  if (wake) ready_.notify_one();  // spinning streams pick the job up without a wake-up
}

void StreamExecutor::loop(int stream) {
  std::vector<Job> taken;
  taken.reserve(max_batch_);
  for (;;) {
    // Requests of a few microseconds would spend more time in wake-ups than computing: watch the
    // queue for a short while before sleeping. A pause loop, not sched_yield: yielding is a system
    // call per turn and hands the core back and forth with the thread that submits the requests.
    spin_until([this] { return pending_.load(std::memory_order_acquire) != 0; }, kSpinMicros);
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ++sleeping_;
      ready_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
      --sleeping_;
      if (jobs_.empty()) return;  // stopping, and nothing left to run
      taken.clear();
      taken.push_back(jobs_.front());
      jobs_.pop_front();
      const uint64_t key = taken.front().batch_key;
      while (key != 0 && taken.size() < max_batch_ && !jobs_.empty() && jobs_.front().batch_key == key) {
        taken.push_back(jobs_.front());
        jobs_.pop_front();
      }
      pending_.store(static_cast<int>(jobs_.size()), std::memory_order_release);
    }
    runner_(stream, taken.data(), taken.size());
  }
}

}  // namespace switchyard
