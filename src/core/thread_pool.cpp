#include "core/thread_pool.h"

#ifdef SWITCHYARD_WITH_OPENMP
#include <omp.h>
#endif

namespace switchyard {

ThreadPool::ThreadPool(int threads) {
  threads_ = threads < 1 ? 1 : threads;
#ifndef SWITCHYARD_WITH_OPENMP
  for (int i = 1; i < threads_; ++i) workers_.emplace_back([this] { worker_loop(); });
#endif
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::work_on_current_job() {
  for (;;) {
    int64_t c = next_chunk_.fetch_add(1);
    if (c >= job_chunks_) break;
    int64_t begin = job_n_ * c / job_chunks_, end = job_n_ * (c + 1) / job_chunks_;
    if (begin < end) job_fn_(job_ctx_, begin, end);
  }
}

void ThreadPool::run(int64_t n, int64_t chunks, Trampoline fn, void* ctx) {
  std::lock_guard<std::mutex> call(call_mutex_);
#ifdef SWITCHYARD_WITH_OPENMP
  if (chunks == threads_) {
    // One chunk per thread, by thread number: with dynamic scheduling the calling thread would take
    // the other thread's chunk too whenever that thread is a little late to the region.
#pragma omp parallel num_threads(threads_)
    {
      // The runtime may grant fewer threads than asked (nested regions): then each takes several.
      for (int64_t c = omp_get_thread_num(); c < chunks; c += omp_get_num_threads()) {
        const int64_t begin = n * c / chunks, end = n * (c + 1) / chunks;
        if (begin < end) fn(ctx, begin, end);
      }
    }
    return;
  }
#pragma omp parallel for num_threads(threads_) schedule(dynamic, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = n * c / chunks, end = n * (c + 1) / chunks;
    if (begin < end) fn(ctx, begin, end);
  }
  return;
#endif
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_fn_ = fn;
    job_ctx_ = ctx;
    job_n_ = n;
    job_chunks_ = chunks;
    next_chunk_.store(0);
    active_.store(static_cast<int>(workers_.size()));
    ++generation_;
  }
  wake_.notify_all();
  work_on_current_job();
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [this] { return active_.load() == 0; });
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    work_on_current_job();
    std::lock_guard<std::mutex> lock(mutex_);
    if (--active_ == 0) done_.notify_all();
  }
}

}  // namespace switchyard
