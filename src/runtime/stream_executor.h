// Streams: a fixed set of threads that run queued infer requests side by side (OpenVINO's CPU
// streams). Each stream computes a request with its own share of the threads; requests on different
// streams never wait for each other.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace switchyard {

class StreamExecutor {
 public:
  explicit StreamExecutor(int streams);
  ~StreamExecutor();
  void submit(std::function<void()> task);

 private:
  void loop();
  std::vector<std::thread> threads_;
  std::deque<std::function<void()>> tasks_;
  std::mutex mutex_;
  std::condition_variable ready_;
  bool stop_ = false;
  int sleeping_ = 0;               // guarded by mutex_
  std::atomic<int> pending_{0};    // queued tasks, read without the lock by spinning streams
};

}  // namespace switchyard
