// Streams: a fixed set of threads that run queued infer requests side by side (OpenVINO's CPU
// streams). Each stream computes with its own share of the threads; requests on different streams
// never wait for each other.
//
// Auto-batching: a stream that takes a job also takes the compatible jobs queued right behind it
// (same non-zero batch key, up to max_batch) and hands them to the runner together, which stacks them
// into one batch. It never waits for more requests to arrive: a lone request runs at once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace switchyard {

class StreamExecutor {
 public:
  struct Job {
    void* request = nullptr;
    uint64_t batch_key = 0;  // 0: run alone
  };
  // Runs n >= 1 jobs on stream `stream` (0..streams-1); must not throw.
  using Runner = std::function<void(int stream, const Job* jobs, size_t n)>;

  StreamExecutor(int streams, size_t max_batch, Runner runner);
  ~StreamExecutor();
  void submit(Job job);

 private:
  void loop(int stream);
  Runner runner_;
  size_t max_batch_;
  std::vector<std::thread> threads_;
  std::deque<Job> jobs_;
  std::mutex mutex_;
  std::condition_variable ready_;
  bool stop_ = false;
  int sleeping_ = 0;               // guarded by mutex_
  std::atomic<int> pending_{0};    // queued jobs, read without the lock by spinning streams
};

}  // namespace switchyard
