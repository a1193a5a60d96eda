// switchyard bench MODEL: warm up, then call the model for a fixed duration; latency percentiles and
// throughput. Inputs come from an .npz "pool" (arrays of [P, ...]: call i uses rows [o, o + batch),
// moving on every call so routing changes) or are random (seeded). --memory-bandwidth measures the
// read bandwidth of the same threads, the roofline for memory-bound (decode) MoE layers.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "commands.h"
#include "io/npy.h"
#include "ops/gemm_kernel.h"
#include "runtime/thread_pool.h"
#include "switchyard/engine.h"

namespace switchyard::cli {

namespace {

using Clock = std::chrono::steady_clock;

// GB/s of reading a buffer much larger than the caches with `threads` threads. Integer adds (which
// the compiler may reorder and vectorise) keep the loop bound by memory, not by add latency.
double measure_read_bandwidth(int threads, double seconds) {
  const size_t n = size_t{1} << 27;  // 1 GiB of uint64
  std::vector<uint64_t> buf(n, 1);
  ThreadPool pool(threads);
  std::vector<uint64_t> sink(static_cast<size_t>(threads) * 8, 0);
  auto pass = [&] {
    pool.parallel_for(threads, 1, [&](int64_t b, int64_t e) {
      for (int64_t part = b; part < e; ++part) {
        const size_t lo = n * static_cast<size_t>(part) / static_cast<size_t>(threads);
        const size_t hi = n * static_cast<size_t>(part + 1) / static_cast<size_t>(threads);
        uint64_t s = 0;
        for (size_t i = lo; i < hi; ++i) s += buf[i];
        sink[static_cast<size_t>(part) * 8] += s;
      }
    });
  };
  pass();  // fault the pages in
  double best = 0;
  auto start = Clock::now();
  while (std::chrono::duration<double>(Clock::now() - start).count() < seconds) {
    auto t0 = Clock::now();
    pass();
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, static_cast<double>(n) * 8 / s / 1e9);
  }
  return best;
}

// Practical FP32 peak: GFLOP/s of a cache-friendly 1024^3 GEMM on the same threads (the compute roof).
double measure_gemm_peak(int threads, double seconds) {
  const int64_t n = 1024;
  std::vector<float> a(static_cast<size_t>(n * n), 0.5f), b(static_cast<size_t>(n * n), 0.25f), c(static_cast<size_t>(n * n));
  ThreadPool pool(threads);
  sgemm(false, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n, &pool);
  double best = 0;
  auto start = Clock::now();
  while (std::chrono::duration<double>(Clock::now() - start).count() < seconds) {
    auto t0 = Clock::now();
    sgemm(false, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n, &pool);
    best = std::max(best, 2.0 * static_cast<double>(n * n * n) / std::chrono::duration<double>(Clock::now() - t0).count() / 1e9);
  }
  return best;
}

}  // namespace

void add_bench_command(CLI::App& app) {
  struct Options {
    std::string model, pool, json;
    int64_t batch = 1;
    int threads = 0;
    double duration = 3.0, warmup = 0.5;
    bool no_fuse = false, bandwidth = false;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("bench", "Latency and throughput of a model over a fixed duration");
  cmd->add_option("model", opt->model, "ONNX model file");
  cmd->add_option("--inputs", opt->pool, ".npz pool: one array [P, ...] per input, sliced by --batch");
  cmd->add_option("--batch", opt->batch, "rows per call (first dimension)")->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  cmd->add_option("--threads", opt->threads, "threads (0: one per core)");
  cmd->add_option("--duration", opt->duration, "seconds to measure");
  cmd->add_option("--warmup", opt->warmup, "seconds of warm-up");
  cmd->add_option("--json", opt->json, "write the results as JSON");
  cmd->add_flag("--no-fuse", opt->no_fuse, "run the exported graph op by op");
  cmd->add_flag("--memory-bandwidth", opt->bandwidth, "also measure the read bandwidth and FP32 GEMM peak of the threads");
  cmd->callback([opt] {
    const int threads = opt->threads > 0 ? opt->threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    nlohmann::json result;
    if (opt->bandwidth) {
      double gbs = measure_read_bandwidth(threads, 1.0);
      double peak = measure_gemm_peak(threads, 1.0);
      result["read_bandwidth_gbs"] = gbs;
      result["fp32_gemm_peak_gflops"] = peak;
      fmt::print("read bandwidth: {:.1f} GB/s, FP32 GEMM peak {:.0f} GFLOP/s ({} threads)\n", gbs, peak, threads);
    }
    if (!opt->model.empty()) {
      Engine engine;
      CompiledModel model = engine.compile(opt->model, {threads, !opt->no_fuse});
      std::vector<std::pair<std::string, Tensor>> pool;
      if (!opt->pool.empty()) {
        pool = read_npz(opt->pool);
      } else {  // random inputs, dynamic dims set to --batch
        std::mt19937 rng(42);
        std::normal_distribution<float> normal(0.f, 1.f);
        for (const auto& in : model.inputs()) {
          SY_CHECK(in.dtype == DType::kFloat32 && in.rank_known, "random inputs need float32 inputs of known rank; give --inputs");
          Shape s;
          for (int64_t d : in.shape) s.push_back(d < 0 ? opt->batch : d);
          Tensor t(DType::kFloat32, s);
          for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = normal(rng);
          pool.emplace_back(in.name, t);
        }
      }
      const int64_t rows = pool.at(0).second.dim(0);
      SY_CHECK(rows >= opt->batch, "the input pool has " + std::to_string(rows) + " rows, fewer than --batch");
      InferRequest request = model.create_infer_request();
      int64_t call = 0;
      auto bind_next = [&] {
        const int64_t offset = (call * opt->batch) % (rows - opt->batch + 1);
        for (const auto& [name, t] : pool) {
          Shape s = t.shape();
          s[0] = opt->batch;
          const size_t row_bytes = t.nbytes() / static_cast<size_t>(t.dim(0));
          request.set_input(name, Tensor::wrap(t.dtype(), s, static_cast<char*>(const_cast<void*>(t.raw())) + offset * row_bytes));
        }
        ++call;
      };
      auto start = Clock::now();
      while (std::chrono::duration<double>(Clock::now() - start).count() < opt->warmup) {
        bind_next();
        request.infer();
      }
      std::vector<double> us;
      us.reserve(1 << 20);
      start = Clock::now();
      double elapsed = 0;
      while (elapsed < opt->duration) {
        bind_next();
        auto t0 = Clock::now();
        request.infer();
        auto t1 = Clock::now();
        us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        elapsed = std::chrono::duration<double>(t1 - start).count();
      }
      std::vector<double> sorted = us;
      std::sort(sorted.begin(), sorted.end());
      auto pct = [&](double p) { return sorted[static_cast<size_t>(p * static_cast<double>(sorted.size() - 1))]; };
      const double throughput = static_cast<double>(us.size() * static_cast<size_t>(opt->batch)) / elapsed;
      result.update({{"engine", "switchyard"}, {"model", opt->model}, {"batch", opt->batch}, {"threads", threads},
                     {"calls", us.size()}, {"p50_us", pct(0.5)}, {"p90_us", pct(0.9)}, {"p99_us", pct(0.99)},
                     {"min_us", sorted.front()}, {"max_us", sorted.back()}, {"throughput", throughput},
                     {"fused", !opt->no_fuse}});
      fmt::print("{}: batch {}, {} threads, {} calls in {:.1f} s\n", opt->model, opt->batch, threads, us.size(), elapsed);
      fmt::print("latency us: p50 {:.1f}  p90 {:.1f}  p99 {:.1f}  min {:.1f}  max {:.1f}\n", pct(0.5), pct(0.9), pct(0.99),
                 sorted.front(), sorted.back());
      fmt::print("throughput: {:.0f} rows/s\n", throughput);
    }
    if (!opt->json.empty()) {
      std::ofstream out(opt->json);
      SY_CHECK(out, "cannot write '" + opt->json + "'");
      out << result.dump(2) << "\n";
    }
  });
}

}  // namespace switchyard::cli
