// Concurrency and async: many threads on one compiled model, start_async / wait / callbacks, the
// async queue with user data, errors that surface on wait and leave everything usable.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <thread>

#include "switchyard/async_queue.h"
#include "switchyard/engine.h"

using namespace switchyard;
namespace fs = std::filesystem;

namespace {

const std::string kSeed = (fs::path(SWITCHYARD_SOURCE_DIR) / "models" / "seed_classifier.onnx").string();

Tensor image(int64_t seed, int64_t batch = 1) {
  Tensor t(DType::kFloat32, {batch, 1, 28, 28});
  uint32_t s = static_cast<uint32_t>(seed) * 2654435761u + 7;
  for (int64_t i = 0; i < t.numel(); ++i) {
    s = s * 1664525u + 1013904223u;
    t.data<float>()[i] = static_cast<float>(s >> 8) / 16777216.f;
  }
  return t;
}

bool same(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return false;
  for (int64_t i = 0; i < a.numel(); ++i)
    if (a.data<float>()[i] != b.data<float>()[i]) return false;
  return true;
}

// Stacked runs (auto-batching) sum in another order than a lone request (other GEMM tiles): equal up
// to rounding (~1e-5 on logits of a 784-term embedding).
bool close(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return false;
  for (int64_t i = 0; i < a.numel(); ++i)
    if (std::fabs(a.data<float>()[i] - b.data<float>()[i]) > 1e-4f * std::max(1.f, std::fabs(b.data<float>()[i]))) return false;
  return true;
}

TEST(Concurrency, SixteenThreadsTenThousandRequestsEach) {
  Engine engine;
  CompiledModel model = engine.compile(kSeed, {2});
  constexpr int kThreads = 16, kRequests = 10000, kDistinct = 64;
  std::vector<Tensor> inputs, expected;
  {
    InferRequest r = model.create_infer_request();
    for (int i = 0; i < kDistinct; ++i) {
      inputs.push_back(image(i));
      r.set_input("image", inputs.back());
      r.infer();
      expected.push_back(r.output(0).clone());
    }
  }
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      InferRequest r = model.create_infer_request();
      for (int i = 0; i < kRequests; ++i) {
        const int k = (i * 7 + t) % kDistinct;
        r.set_input("image", inputs[static_cast<size_t>(k)]);
        r.infer();
        if (!same(r.output(0), expected[static_cast<size_t>(k)])) ++mismatches;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(Async, StartWaitAndCallback) {
  Engine engine;
  CompileOptions options{2, true, PerformanceHint::kThroughput};
  options.auto_batch = 0;  // streams as the hint sets them without auto-batching
  CompiledModel model = engine.compile(kSeed, options);
  EXPECT_EQ(model.streams(), 2);
  EXPECT_EQ(model.threads_per_stream(), 1);
  InferRequest sync = model.create_infer_request();
  Tensor x = image(3);
  sync.set_input("image", x);
  sync.infer();
  InferRequest r = model.create_infer_request();
  std::atomic<int> calls{0};
  std::atomic<bool> release{false};
  r.set_callback([&](std::exception_ptr e) {
    EXPECT_FALSE(e);
    ++calls;
    while (!release.load()) std::this_thread::yield();  // hold the request busy
  });
  r.set_input("image", x);
  r.start_async();
  EXPECT_FALSE(r.wait_for(std::chrono::milliseconds(1)));
  EXPECT_THROW(r.start_async(), Error);  // still running
  release = true;
  r.wait();
  EXPECT_TRUE(r.wait_for(std::chrono::milliseconds(0)));
  EXPECT_EQ(calls.load(), 1);
  EXPECT_TRUE(same(r.output(0), sync.output(0)));
}

TEST(Async, ErrorSurfacesOnWaitAndRequestStaysUsable) {
  Engine engine;
  CompiledModel model = engine.compile(kSeed, {2, true, PerformanceHint::kThroughput});
  InferRequest r = model.create_infer_request();
  std::exception_ptr seen;
  r.set_callback([&](std::exception_ptr e) { seen = e; });
  r.start_async();  // no input bound: fails on the stream
  EXPECT_THROW(r.wait(), Error);
  EXPECT_TRUE(seen);
  Tensor x = image(5);
  r.set_input("image", x);
  r.start_async();
  EXPECT_NO_THROW(r.wait());
}

TEST(AsyncQueue, CallbacksOncePerJobWithUserData) {
  Engine engine;
  CompiledModel model = engine.compile(kSeed, {2, true, PerformanceHint::kThroughput});
  constexpr int kJobs = 500;
  std::vector<Tensor> inputs, expected;
  InferRequest ref = model.create_infer_request();
  for (int i = 0; i < kJobs; ++i) {
    inputs.push_back(image(i));
    ref.set_input("image", inputs.back());
    ref.infer();
    expected.push_back(ref.output(0).clone());
  }
  std::vector<std::atomic<int>> calls(kJobs);
  std::atomic<int> wrong{0}, errors{0};
  AsyncInferQueue queue(model, 4);
  EXPECT_EQ(queue.size(), 4u);
  queue.set_callback([&](InferRequest& request, void* user, std::exception_ptr error) {
    const int job = static_cast<int>(reinterpret_cast<intptr_t>(user));
    ++calls[static_cast<size_t>(job)];
    if (error) {
      ++errors;
      return;
    }
    if (!close(request.output(0), expected[static_cast<size_t>(job)])) ++wrong;
  });
  for (int i = 0; i < kJobs; ++i) {
    if (i == 100) {  // one bad job in the middle
      queue.start_async({{"image", Tensor(DType::kFloat32, {1, 1, 28, 28})}}, reinterpret_cast<void*>(intptr_t{i}));
      continue;
    }
    queue.start_async({{"image", inputs[static_cast<size_t>(i)]}}, reinterpret_cast<void*>(intptr_t{i}));
  }
  queue.wait_all();
  EXPECT_TRUE(queue.is_ready());
  for (int i = 0; i < kJobs; ++i) EXPECT_EQ(calls[static_cast<size_t>(i)].load(), 1) << i;
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(wrong.load(), 1);  // job 100 ran on zeros, so its logits differ from image(100)'s
  // Bad input is refused at start_async, the queue stays usable.
  EXPECT_THROW(queue.start_async({{"image", Tensor(DType::kFloat64, {1, 1, 28, 28})}}, nullptr), Error);
  queue.start_async({{"image", inputs[0]}}, reinterpret_cast<void*>(intptr_t{0}));
  queue.wait_all();
  EXPECT_EQ(calls[0].load(), 2);
}

}  // namespace

// Throughput hint on a model whose rows are independent: queued requests run stacked, and each still
// gets its own rows (checked against lone runs), its callback and its user data.
TEST(AsyncQueue, AutoBatchingStacksQueuedRequests) {
  Engine engine;
  CompileOptions options{2, true, PerformanceHint::kThroughput};
  CompiledModel model = engine.compile(kSeed, options);
  ASSERT_GT(model.auto_batch(), 1) << model.auto_batch_note();
  constexpr int kJobs = 2000;
  std::vector<Tensor> inputs, expected;
  InferRequest ref = model.create_infer_request();
  for (int i = 0; i < kJobs; ++i) {
    inputs.push_back(image(i % 300, 1 + i % 3));  // batch 1..3 per request
    ref.set_input("image", inputs.back());
    ref.infer();
    expected.push_back(ref.output(0).clone());
  }
  std::vector<std::atomic<int>> calls(kJobs);
  std::atomic<int> wrong{0};
  AsyncInferQueue queue(model, 16);
  queue.set_callback([&](InferRequest& request, void* user, std::exception_ptr error) {
    const auto job = static_cast<size_t>(reinterpret_cast<intptr_t>(user));
    ++calls[job];
    if (error || !close(request.output(0), expected[job])) ++wrong;
    if (request.expert_counts().size() != 1) ++wrong;
  });
  for (int i = 0; i < kJobs; ++i) queue.start_async({{"image", inputs[static_cast<size_t>(i)]}}, reinterpret_cast<void*>(intptr_t{i}));
  queue.wait_all();
  for (int i = 0; i < kJobs; ++i) EXPECT_EQ(calls[static_cast<size_t>(i)].load(), 1) << i;
  EXPECT_EQ(wrong.load(), 0);
  const AutoBatchStats stats = model.auto_batch_stats();
  EXPECT_GT(stats.batched_runs, 0u);  // 16 jobs in flight on one stream: some must have queued up
  EXPECT_GE(stats.batched_requests, 2 * stats.batched_runs);
}

TEST(AsyncQueue, AutoBatchingOnlyWhereRowsAreIndependent) {
  Engine engine;
  CompileOptions options{2, true, PerformanceHint::kThroughput};
  EXPECT_GT(engine.compile(kSeed, options).auto_batch(), 1);
  options.fuse_moe = false;  // the exported routing graph (NonZero, ScatterElements...) mixes rows
  CompiledModel unfused = engine.compile(kSeed, options);
  EXPECT_EQ(unfused.auto_batch(), 1);
  EXPECT_NE(unfused.auto_batch_note().find("node"), std::string::npos) << unfused.auto_batch_note();
  options.fuse_moe = true;
  options.hint = PerformanceHint::kLatency;
  EXPECT_EQ(engine.compile(kSeed, options).auto_batch(), 1);
}
