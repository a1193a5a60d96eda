// The server's dynamic batcher (src/server/batcher.h) on the seed classifier: requests of many threads
// stacked and split back exactly, delay-mode batches, the queue limit, and the metrics page format.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <thread>

#include "server/batcher.h"
#include "server/metrics.h"

namespace switchyard::serve {
namespace {

const std::string kSeed = std::string(SWITCHYARD_SOURCE_DIR) + "/models/seed_classifier.onnx";

CompiledModel compile_seed(int auto_batch) {
  CompileOptions options;
  options.threads = 1;
  options.auto_batch = auto_batch;
  return Engine().compile(kSeed, options);
}

Tensor images(int64_t n, uint32_t seed) {
  Tensor t(DType::kFloat32, {n, 1, 28, 28});
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

std::unique_ptr<InferJob> job_for(const Tensor& row, std::vector<float>& answer, std::atomic<int>& answered) {
  auto job = std::make_unique<InferJob>();
  job->inputs = {row};
  job->outputs = {0};
  job->rows = row.dim(0);
  job->done = [&answer, &answered](InferJob&, const JobResult& r) {
    ASSERT_EQ(r.status, JobStatus::kOk) << r.error;
    const Tensor& t = r.outputs.at(0);
    answer.assign(t.data<float>(), t.data<float>() + t.numel());
    answered.fetch_add(1);
  };
  return job;
}

TEST(ServerBatcher, StacksConcurrentRequestsAndSplitsRowsBack) {
  CompiledModel model = compile_seed(64);
  ASSERT_GT(model.auto_batch(), 1) << model.auto_batch_note();
  ModelMetrics metrics;
  BatchingConfig config;
  config.enabled = true;
  config.max_batch_size = 64;
  config.max_queue_size = 2048;  // every request may be queued at once (slow kernels: the portable ones)
  DynamicBatcher batcher(model, config, metrics);
  const int threads = 8, per_thread = 150;
  const Tensor pool = images(threads * per_thread, 3);
  std::vector<std::vector<float>> answers(static_cast<size_t>(threads * per_thread));
  std::atomic<int> answered{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      for (int r = 0; r < per_thread; ++r) {
        const int k = t * per_thread + r;
        auto job = job_for(pool.slice(k, 1), answers[static_cast<size_t>(k)], answered);
        ASSERT_TRUE(batcher.submit(job));
      }
    });
  for (auto& w : workers) w.join();
  batcher.stop();
  ASSERT_EQ(answered.load(), threads * per_thread);
  const auto expected = model.run({{"image", pool}}).at("logits");
  for (int k = 0; k < threads * per_thread; ++k)
    for (int j = 0; j < 10; ++j) {  // batch 1 and batch 1200 may take other kernel paths (sums in another order)
      const float e = expected.data<float>()[k * 10 + j];
      ASSERT_NEAR(answers[static_cast<size_t>(k)][static_cast<size_t>(j)], e, 1e-4f * std::max(1.f, std::fabs(e))) << k;
    }
  EXPECT_EQ(metrics.request_success.load(), static_cast<uint64_t>(threads * per_thread));
  EXPECT_EQ(metrics.inference_count.load(), static_cast<uint64_t>(threads * per_thread));
  EXPECT_LE(metrics.exec_count.load(), static_cast<uint64_t>(threads * per_thread));
  EXPECT_EQ(metrics.pending_requests.load(), 0);
  uint64_t tokens = 0;
  for (const ExpertLoad& l : batcher.expert_load())
    for (uint64_t n : l.tokens) tokens += n;
  EXPECT_EQ(tokens, 2u * threads * per_thread);  // top-2 routing
}

TEST(ServerBatcher, DelayModeWaitsForThePreferredBatch) {
  CompiledModel model = compile_seed(8);
  ModelMetrics metrics;
  BatchingConfig config;
  config.enabled = true;
  config.max_batch_size = 8;
  config.preferred_batch_sizes = {4};
  config.max_queue_delay_us = 5'000'000;  // far longer than the test: only the fourth request releases it
  DynamicBatcher batcher(model, config, metrics);
  const Tensor pool = images(4, 5);
  std::vector<std::vector<float>> answers(4);
  std::atomic<int> answered{0};
  for (int k = 0; k < 4; ++k) {
    auto job = job_for(pool.slice(k, 1), answers[static_cast<size_t>(k)], answered);
    ASSERT_TRUE(batcher.submit(job));
  }
  for (int i = 0; i < 2000 && answered.load() < 4; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(answered.load(), 4);
  EXPECT_EQ(metrics.exec_count.load(), 1u);
  batcher.stop();
}

TEST(ServerBatcher, FullQueueRefusesAndStopRunsWhatIsQueued) {
  CompiledModel model = compile_seed(8);
  ModelMetrics metrics;
  BatchingConfig config;
  config.enabled = true;
  config.max_batch_size = 8;
  config.max_queue_delay_us = 5'000'000;
  config.max_queue_size = 2;
  DynamicBatcher batcher(model, config, metrics);
  const Tensor pool = images(3, 9);
  std::vector<std::vector<float>> answers(3);
  std::atomic<int> answered{0};
  auto a = job_for(pool.slice(0, 1), answers[0], answered);
  auto b = job_for(pool.slice(1, 1), answers[1], answered);
  auto c = job_for(pool.slice(2, 1), answers[2], answered);
  ASSERT_TRUE(batcher.submit(a));
  ASSERT_TRUE(batcher.submit(b));
  EXPECT_FALSE(batcher.submit(c));
  ASSERT_TRUE(c);  // refused jobs stay with the caller
  batcher.stop();  // ends the delay: the two queued requests run
  EXPECT_EQ(answered.load(), 2);
  auto d = job_for(pool.slice(2, 1), answers[2], answered);
  EXPECT_FALSE(batcher.submit(d));
}

TEST(ServerBatcher, DeferredRequestsRunAsOneBatch) {
  CompiledModel model = compile_seed(16);
  ModelMetrics metrics;
  BatchingConfig config;
  config.enabled = true;
  config.max_batch_size = 16;
  DynamicBatcher batcher(model, config, metrics);
  const Tensor pool = images(10, 11);
  std::vector<std::vector<float>> answers(10);
  std::atomic<int> answered{0};
  // As the gRPC polling thread does: read several requests, then run them.
  for (int k = 0; k < 6; ++k) {
    auto job = job_for(pool.slice(k, 1), answers[static_cast<size_t>(k)], answered);
    ASSERT_TRUE(batcher.submit(job, /*execute_now=*/false));
  }
  EXPECT_EQ(answered.load(), 0);
  batcher.run_queued();
  EXPECT_EQ(answered.load(), 6);
  EXPECT_EQ(metrics.exec_count.load(), 1u);
  EXPECT_EQ(metrics.inference_count.load(), 6u);
  // Deferred requests that nobody ran are run by stop().
  for (int k = 6; k < 10; ++k) {
    auto job = job_for(pool.slice(k, 1), answers[static_cast<size_t>(k)], answered);
    ASSERT_TRUE(batcher.submit(job, /*execute_now=*/false));
  }
  batcher.stop();
  EXPECT_EQ(answered.load(), 10);
  const auto expected = model.run({{"image", pool}}).at("logits");
  for (int k = 0; k < 10; ++k)
    for (int j = 0; j < 10; ++j)
      EXPECT_NEAR(answers[static_cast<size_t>(k)][static_cast<size_t>(j)], expected.data<float>()[k * 10 + j], 1e-3f);
}

TEST(ServerMetrics, PrometheusTextHasEachFamilyOnceAndCumulativeBuckets) {
  ModelMetrics a, b;
  a.request_success = 3;
  a.request_us.observe(30);
  a.request_us.observe(30000);
  b.batch_size.observe(64);
  const std::string page = render_metrics({{"m", "1", &a, {{"moe", {5, 0, 7}}}}, {"m", "2", &b, {}}});
  auto count = [&](const std::string& s) {
    size_t n = 0;
    for (size_t p = page.find(s); p != std::string::npos; p = page.find(s, p + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("# TYPE nv_inference_request_success counter"), 1u);
  EXPECT_NE(page.find("nv_inference_request_success{model=\"m\",version=\"1\"} 3\n"), std::string::npos);
  EXPECT_NE(page.find("ovms_request_time_us_bucket{model=\"m\",version=\"1\",le=\"50\"} 1\n"), std::string::npos);
  EXPECT_NE(page.find("ovms_request_time_us_bucket{model=\"m\",version=\"1\",le=\"+Inf\"} 2\n"), std::string::npos);
  EXPECT_NE(page.find("ovms_request_time_us_count{model=\"m\",version=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(page.find("switchyard_batch_size_bucket{model=\"m\",version=\"2\",le=\"64\"} 1\n"), std::string::npos);
  EXPECT_NE(page.find("switchyard_expert_tokens_total{model=\"m\",version=\"1\",layer=\"moe\",expert=\"2\"} 7\n"),
            std::string::npos);
}

}  // namespace
}  // namespace switchyard::serve
