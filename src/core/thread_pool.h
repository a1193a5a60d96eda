// Data-parallel loops inside one kernel, on N threads (the calling thread takes part). Calls are
// serialised per pool: a request owns its pool, so kernels never contend for it.
// With OpenMP (the build links it for oneDNN's GEMM) the loops run on the OpenMP team of the calling
// thread, the same threads oneDNN uses: two runtimes spinning on two cores would fight. Without it,
// the pool starts N-1 worker threads of its own.
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

  int size() const { return threads_; }
  // A pool of one thread (the caller's): for work too small to be worth waking the others.
  static ThreadPool& serial() {
    static ThreadPool one(1);  // runs every loop inline: no shared state, safe from any thread
    return one;
  }

  // Calls fn(begin, end) over [0, n) in chunks of at least `grain`, on all threads; returns when done.
  template <typename F>
  void parallel_for(int64_t n, int64_t grain, F&& fn) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int64_t chunks = (n + grain - 1) / grain;
    if (threads_ <= 1 || chunks <= 1) {
      fn(int64_t{0}, n);
      return;
    }
    if (chunks > size() * 16) chunks = size() * 16;
    using Fn = std::remove_reference_t<F>;
    auto trampoline = [](void* ctx, int64_t b, int64_t e) { (*static_cast<Fn*>(ctx))(b, e); };
    run(n, chunks, trampoline, const_cast<void*>(static_cast<const void*>(&fn)));
  }

 private:
  using Trampoline = void (*)(void*, int64_t, int64_t);
  void run(int64_t n, int64_t chunks, Trampoline fn, void* ctx);
  void worker_loop();
  void work_on_current_job();

  int threads_ = 1;
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
