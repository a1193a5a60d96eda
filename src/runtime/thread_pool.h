// A fixed pool of worker threads for data-parallel loops inside one kernel. The calling thread
// takes part, so a pool of N threads starts N-1 workers. Calls are serialised per pool: a request
// owns its pool (or a share of one), so kernels never contend for it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <type_traits>
#include <thread>
#include <vector>

namespace switchyard {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) over [0, n) in chunks of at least `grain`, on all threads; returns when done.
  template <typename F>
  void parallel_for(int64_t n, int64_t grain, F&& fn) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int64_t chunks = (n + grain - 1) / grain;
    if (workers_.empty() || chunks <= 1) {
      fn(int64_t{0}, n);
      return;
    }
    if (chunks > size() * 4) chunks = size() * 4;
    using Fn = std::remove_reference_t<F>;
    auto trampoline = [](void* ctx, int64_t b, int64_t e) { (*static_cast<Fn*>(ctx))(b, e); };
    run(n, chunks, trampoline, const_cast<void*>(static_cast<const void*>(&fn)));
  }

 private:
  using Trampoline = void (*)(void*, int64_t, int64_t);
  void run(int64_t n, int64_t chunks, Trampoline fn, void* ctx);
  void worker_loop();
  void work_on_current_job();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  uint64_t generation_ = 0;
  bool stop_ = false;
  // The current job.
  Trampoline job_fn_ = nullptr;
  void* job_ctx_ = nullptr;
  int64_t job_n_ = 0, job_chunks_ = 0;
  std::atomic<int64_t> next_chunk_{0};
  std::atomic<int> active_{0};
  std::mutex call_mutex_;
};

}  // namespace switchyard
