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
#include <unistd.h>

#include <condition_variable>
#include <mutex>

#include "switchyard/async_queue.h"

#include "commands.h"
#include "io/idx.h"
#include "io/npy.h"
#include "kernels/gemm_kernel.h"
#include "server/load_client.h"
#include "core/thread_pool.h"
#include "core/spin.h"
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

struct CaseResult {
  int64_t batch = 0;
  size_t calls = 0;
  double seconds = 0, p50 = 0, p90 = 0, p99 = 0, min = 0, max = 0, throughput = 0;
};

// Slices `batch` rows of every pooled array, moving on by `batch` rows per call.
class InputPool {
 public:
  InputPool(std::vector<std::pair<std::string, Tensor>> arrays) : arrays_(std::move(arrays)) {
    rows_ = arrays_.at(0).second.dim(0);
  }
  int64_t rows() const { return rows_; }
  std::map<std::string, Tensor> slice(int64_t call, int64_t batch) const {
    const int64_t offset = (call * batch) % (rows_ - batch + 1);
    std::map<std::string, Tensor> feeds;
    for (const auto& [name, t] : arrays_) {
      Shape s = t.shape();
      s[0] = batch;
      const size_t row_bytes = t.nbytes() / static_cast<size_t>(t.dim(0));
      feeds[name] = Tensor::wrap(t.dtype(), s, static_cast<char*>(const_cast<void*>(t.raw())) + offset * row_bytes);
    }
    return feeds;
  }

 private:
  std::vector<std::pair<std::string, Tensor>> arrays_;
  int64_t rows_ = 0;
};

CaseResult summarize(int64_t batch, std::vector<double>& us, double seconds) {
  CaseResult r;
  r.batch = batch;
  r.calls = us.size();
  r.seconds = seconds;
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) { return us.empty() ? 0.0 : us[static_cast<size_t>(p * static_cast<double>(us.size() - 1))]; };
  r.p50 = pct(0.5);
  r.p90 = pct(0.9);
  r.p99 = pct(0.99);
  r.min = us.empty() ? 0 : us.front();
  r.max = us.empty() ? 0 : us.back();
  r.throughput = seconds > 0 ? static_cast<double>(us.size()) * static_cast<double>(batch) / seconds : 0;
  return r;
}

void progress(const char* phase, int64_t batch, double done, double total, size_t calls) {
  if (!isatty(2)) return;
  std::fprintf(stderr, "\r[%3d%%] batch %lld %s: %zu calls   ", static_cast<int>(100 * std::min(1.0, done / total)),
               static_cast<long long>(batch), phase, calls);
  std::fflush(stderr);
}

// Sync loop (one request) or `requests` in flight through an AsyncInferQueue.
CaseResult run_case(const CompiledModel& model, const InputPool& pool, int64_t batch, int requests, double warmup,
                    double duration) {
  SY_CHECK(pool.rows() >= batch, "the input pool has " + std::to_string(pool.rows()) + " rows, fewer than batch " +
                                     std::to_string(batch));
  std::vector<double> us;
  us.reserve(1 << 20);
  if (requests <= 1) {
    InferRequest request = model.create_infer_request();
    int64_t call = 0;
    auto bind = [&] {
      for (const auto& [name, t] : pool.slice(call++, batch)) request.set_input(name, t);
    };
    auto start = Clock::now();
    while (std::chrono::duration<double>(Clock::now() - start).count() < warmup) {
      bind();
      request.infer();
    }
    start = Clock::now();
    double elapsed = 0, last_print = 0;
    while (elapsed < duration) {
      bind();
      auto t0 = Clock::now();
      request.infer();
      auto t1 = Clock::now();
      us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      elapsed = std::chrono::duration<double>(t1 - start).count();
      if (elapsed - last_print > 0.5) {
        progress("measuring", batch, elapsed, duration, us.size());
        last_print = elapsed;
      }
    }
    return summarize(batch, us, elapsed);
  }
  AsyncInferQueue queue(model, static_cast<size_t>(requests));
  // One timing slot per job in flight; a slot returns to the free list when its callback runs.
  std::vector<Clock::time_point> started(static_cast<size_t>(requests));
  std::vector<size_t> free_slots;
  for (size_t i = 0; i < started.size(); ++i) free_slots.push_back(i);
  std::mutex m;
  std::condition_variable slot_freed;
  std::atomic<size_t> free_count{free_slots.size()};
  const bool spin = static_cast<unsigned>(model.streams() * model.threads_per_stream()) < std::thread::hardware_concurrency();
  bool measuring = false;
  std::exception_ptr failure;
  queue.set_callback([&](InferRequest&, void* user, std::exception_ptr error) {
    auto now = Clock::now();
    const size_t slot = reinterpret_cast<size_t>(user);
    {
      std::lock_guard<std::mutex> lock(m);
      if (error && !failure) failure = error;
      if (measuring) us.push_back(std::chrono::duration<double, std::micro>(now - started[slot]).count());
      free_slots.push_back(slot);
      free_count.store(free_slots.size(), std::memory_order_release);
    }
    slot_freed.notify_one();
  });
  auto run_for = [&](double seconds, bool measure) {
    {
      std::lock_guard<std::mutex> lock(m);
      measuring = measure;
    }
    int64_t call = 0;
    auto start = Clock::now();
    double elapsed = 0, last_print = 0;
    while ((elapsed = std::chrono::duration<double>(Clock::now() - start).count()) < seconds) {
      auto feeds = pool.slice(call++, batch);
      size_t slot;
      // Spin briefly for a free slot before sleeping (as the queue itself does): a condition-variable
      // wake-up can take longer than a batch-1 request.
      if (spin) spin_until([&] { return free_count.load(std::memory_order_acquire) != 0; }, 50);
      {
        std::unique_lock<std::mutex> lock(m);
        slot_freed.wait(lock, [&] { return !free_slots.empty(); });
        if (failure) std::rethrow_exception(failure);
        slot = free_slots.back();
        free_slots.pop_back();
        free_count.store(free_slots.size(), std::memory_order_release);
        started[slot] = Clock::now();
      }
      queue.start_async(feeds, reinterpret_cast<void*>(slot));
      if (measure && elapsed - last_print > 0.5) {
        progress("measuring", batch, elapsed, seconds, us.size());
        last_print = elapsed;
      }
    }
    queue.wait_all();
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  run_for(warmup, false);
  const double elapsed = run_for(duration, true);
  std::lock_guard<std::mutex> lock(m);
  if (failure) std::rethrow_exception(failure);
  return summarize(batch, us, elapsed);
}

// Throughput and p99 latency against batch size, as a standalone SVG.
void write_plot(const std::string& path, const std::vector<CaseResult>& results, const std::string& title) {
  SY_CHECK(path.size() > 4 && path.compare(path.size() - 4, 4, ".svg") == 0, "--plot writes SVG: give a .svg file name");
  const double W = 720, H = 420, L = 80, R = 80, T = 50, B = 60;
  double max_tp = 1, max_lat = 1;
  for (const auto& r : results) {
    max_tp = std::max(max_tp, r.throughput);
    max_lat = std::max(max_lat, r.p99);
  }
  const size_t n = results.size();
  auto x = [&](size_t i) { return L + (n <= 1 ? (W - L - R) / 2 : (W - L - R) * static_cast<double>(i) / static_cast<double>(n - 1)); };
  auto y_tp = [&](double v) { return H - B - (H - T - B) * v / (max_tp * 1.1); };
  auto y_lat = [&](double v) { return H - B - (H - T - B) * v / (max_lat * 1.1); };
  std::ofstream out(path);
  SY_CHECK(out, "cannot write '" + path + "'");
  out << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H << "' font-family='sans-serif' font-size='12'>\n"
      << "<rect width='100%' height='100%' fill='white'/>\n"
      << "<text x='" << W / 2 << "' y='24' text-anchor='middle' font-size='15'>" << title << "</text>\n"
      << "<line x1='" << L << "' y1='" << H - B << "' x2='" << W - R << "' y2='" << H - B << "' stroke='black'/>\n"
      << "<line x1='" << L << "' y1='" << T << "' x2='" << L << "' y2='" << H - B << "' stroke='#1f77b4'/>\n"
      << "<line x1='" << W - R << "' y1='" << T << "' x2='" << W - R << "' y2='" << H - B << "' stroke='#d62728'/>\n"
      << "<text x='" << W / 2 << "' y='" << H - 20 << "' text-anchor='middle'>batch size</text>\n"
      << "<text x='20' y='" << T - 12 << "' fill='#1f77b4'>throughput (rows/s)</text>\n"
      << "<text x='" << W - R - 40 << "' y='" << T - 12 << "' fill='#d62728'>p99 latency (us)</text>\n";
  for (int t = 0; t <= 4; ++t) {
    const double f = t / 4.0;
    out << "<text x='" << L - 6 << "' y='" << y_tp(max_tp * 1.1 * f) + 4 << "' text-anchor='end' fill='#1f77b4'>"
        << fmt::format("{:.3g}", max_tp * 1.1 * f) << "</text>\n"
        << "<text x='" << W - R + 6 << "' y='" << y_lat(max_lat * 1.1 * f) + 4 << "' fill='#d62728'>"
        << fmt::format("{:.3g}", max_lat * 1.1 * f) << "</text>\n";
  }
  std::string tp_points, lat_points;
  for (size_t i = 0; i < n; ++i) {
    tp_points += fmt::format("{:.1f},{:.1f} ", x(i), y_tp(results[i].throughput));
    lat_points += fmt::format("{:.1f},{:.1f} ", x(i), y_lat(results[i].p99));
    out << "<text x='" << x(i) << "' y='" << H - B + 18 << "' text-anchor='middle'>" << results[i].batch << "</text>\n"
        << "<circle cx='" << x(i) << "' cy='" << y_tp(results[i].throughput) << "' r='4' fill='#1f77b4'/>\n"
        << "<circle cx='" << x(i) << "' cy='" << y_lat(results[i].p99) << "' r='4' fill='#d62728'/>\n";
  }
  out << "<polyline points='" << tp_points << "' fill='none' stroke='#1f77b4' stroke-width='2'/>\n"
      << "<polyline points='" << lat_points << "' fill='none' stroke='#d62728' stroke-width='2' stroke-dasharray='6 4'/>\n"
      << "</svg>\n";
}


// `bench --server`: batch-1 requests of distinct inputs from 1, 8, 64... concurrent clients.
nlohmann::json bench_server(const std::string& url, const std::string& model, const std::string& version,
                            const std::vector<int>& clients, const std::string& dataset, const std::string& data_dir,
                            double warmup, double duration) {
  const std::vector<PortInfo> inputs = serve::server_model_inputs(url, model, version);
  std::vector<std::pair<std::string, Tensor>> pool;
  const int64_t rows = 4096;
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.f, 1.f);
  Tensor images;
  if (!dataset.empty()) {
    images = read_idx(data_dir + "/t10k-images-idx3-ubyte.gz");
    SY_CHECK(inputs.size() == 1, "--dataset needs a model with one input");
  }
  for (const PortInfo& in : inputs) {
    SY_CHECK(in.dtype == DType::kFloat32, "bench --server feeds float32 inputs; input '" + in.name + "' is " + dtype_name(in.dtype));
    Shape s = in.shape;
    SY_CHECK(!s.empty(), "input '" + in.name + "' has no batch dimension");
    s[0] = rows;
    for (size_t d = 1; d < s.size(); ++d) s[d] = s[d] < 0 ? 1 : s[d];
    Tensor t(DType::kFloat32, s);
    const int64_t row = t.numel() / rows;
    for (int64_t i = 0; i < t.numel(); ++i)
      t.data<float>()[i] = images.defined() && row == 784 ? images.data<uint8_t>()[(i / row) % images.dim(0) * 784 + i % row] * (1.f / 255.f)
                                                         : normal(rng);
    pool.emplace_back(in.name, t);
  }
  nlohmann::json result = {{"server", url}, {"model", model}, {"batch", 1}};
  fmt::print("[ INFO ] server {} model {}: batch-1 requests, {:.1f} s per case after {:.1f} s warm-up\n", url, model, duration, warmup);
  for (int c : clients) {
    serve::LoadOptions o{url, model, version, c, warmup, duration};
    const serve::LoadResult r = serve::run_load(o, pool);
    fmt::print("[ INFO ] clients {:>4}: {:>8} requests, {:>6} errors | latency us: median {:.1f}  p90 {:.1f}  p99 {:.1f}  max {:.1f} | {:.0f} requests/s\n",
               c, r.requests, r.errors, r.p50_us, r.p90_us, r.p99_us, r.max_us, r.requests_per_second);
    if (r.errors) fmt::print("[ WARN ] first error: {}\n", r.first_error);
    result["results"].push_back({{"clients", c}, {"requests", r.requests}, {"errors", r.errors}, {"p50_us", r.p50_us},
                                 {"p90_us", r.p90_us}, {"p99_us", r.p99_us}, {"max_us", r.max_us},
                                 {"requests_per_second", r.requests_per_second}});
  }
  return result;
}

}  // namespace

void add_bench_command(CLI::App& app) {
  struct Options {
    std::string model, pool, json, plot, hint = "latency", dataset, data_dir = "/usr/share/datasets/fashion-mnist";
    CompileFlags compile;
    std::vector<int64_t> batches{1};
    int streams = 0, requests = 0, auto_batch = -1;
    double duration = 3.0, warmup = 0.5;
    bool bandwidth = false;
    std::string server, model_name, model_version;
    std::vector<int> clients{1, 8, 64};
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("bench", "Latency and throughput of a model over a fixed duration");
  cmd->add_option("model", opt->model, "ONNX model file");
  cmd->add_option("--inputs", opt->pool, ".npz pool: one array [P, ...] per input, sliced by the batch size (default: random)");
  cmd->add_option("--dataset", opt->dataset, "inputs from a dataset's test images (pixels x 1/255), instead of --inputs")
      ->check(CLI::IsMember({"fashion-mnist"}));
  cmd->add_option("--data-dir", opt->data_dir, "where the dataset's IDX files are");
  cmd->add_option("--batch", opt->batches, "batch sizes, e.g. 1,16,64,256 (a sweep)")->delimiter(',');
  cmd->add_option("--hint", opt->hint, "performance hint")->check(CLI::IsMember({"latency", "throughput"}));
  cmd->add_option("--streams", opt->streams, "parallel streams (0: by hint)");
  cmd->add_option("--requests", opt->requests, "requests in flight (0: 1 for latency, 2 x streams for throughput)");
  cmd->add_option("--auto-batch", opt->auto_batch, "stack queued requests into one run, up to N (-1: by hint, 0: off)");
  cmd->add_option("--duration", opt->duration, "seconds to measure per batch size");
  cmd->add_option("--warmup", opt->warmup, "seconds of warm-up per batch size");
  cmd->add_option("--json", opt->json, "write the results as JSON");
  cmd->add_option("--plot", opt->plot, "write an SVG chart of throughput and p99 latency vs batch size");
  opt->compile.add_to(cmd);
  cmd->add_option("--server", opt->server, "measure a running server instead: grpc://HOST:PORT or http://HOST:PORT");
  cmd->add_option("--model-name", opt->model_name, "with --server: the served model's name");
  cmd->add_option("--model-version", opt->model_version, "with --server: its version (default: the server's choice)");
  cmd->add_option("--clients", opt->clients, "with --server: concurrent closed-loop clients, e.g. 1,8,64 (a sweep)")
      ->delimiter(',')->check(CLI::Range(1, 4096));
  cmd->add_flag("--memory-bandwidth", opt->bandwidth, "also measure the read bandwidth and FP32 GEMM peak of the threads");
  cmd->callback([opt] {
    const int threads =
        opt->compile.threads > 0 ? opt->compile.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    nlohmann::json result;
    if (opt->bandwidth) {
      double gbs = measure_read_bandwidth(threads, 1.0);
      double peak = measure_gemm_peak(threads, 1.0);
      result["read_bandwidth_gbs"] = gbs;
      result["fp32_gemm_peak_gflops"] = peak;
      fmt::print("read bandwidth: {:.1f} GB/s, FP32 GEMM peak {:.0f} GFLOP/s ({} threads)\n", gbs, peak, threads);
    }
    if (!opt->server.empty()) {
      SY_CHECK(!opt->model_name.empty(), "--server needs --model-name");
      result = bench_server(opt->server, opt->model_name, opt->model_version, opt->clients, opt->dataset, opt->data_dir,
                            opt->warmup, opt->duration);
    } else if (!opt->model.empty()) {
      CompileOptions options;
      opt->compile.apply(options);
      options.threads = threads;
      options.hint = parse_performance_hint(opt->hint);
      options.streams = opt->streams;
      options.auto_batch = opt->auto_batch;
      CompiledModel model = Engine().compile(opt->model, options);
      const int requests = opt->requests > 0 ? opt->requests : (options.hint == PerformanceHint::kThroughput ? 2 * model.streams() : 1);
      const int64_t max_batch = *std::max_element(opt->batches.begin(), opt->batches.end());
      std::vector<std::pair<std::string, Tensor>> arrays;
      if (!opt->pool.empty()) {
        arrays = read_npz(opt->pool);
      } else if (!opt->dataset.empty()) {
        // The 10,000 Fashion-MNIST test images, shaped as the model's single image input.
        SY_CHECK(model.inputs().size() == 1 && model.inputs()[0].dtype == DType::kFloat32,
                 "--dataset needs a model with one float32 input");
        Tensor images = read_idx(opt->data_dir + "/t10k-images-idx3-ubyte.gz");
        SY_CHECK(images.rank() == 3 && images.dim(1) == 28 && images.dim(2) == 28, "unexpected Fashion-MNIST layout in " + opt->data_dir);
        const PortInfo& in = model.inputs()[0];
        Shape shape = {images.dim(0), 784};
        if (in.rank_known && in.shape.size() == 4) shape = {images.dim(0), 1, 28, 28};
        if (in.rank_known && in.shape.size() == 3) shape = {images.dim(0), 28, 28};
        Tensor pixels(DType::kFloat32, shape);
        for (int64_t i = 0; i < pixels.numel(); ++i) pixels.data<float>()[i] = images.data<uint8_t>()[i] * (1.f / 255.f);
        arrays.emplace_back(in.name, pixels);
      } else {  // random inputs, dynamic dims set to the largest batch
        std::mt19937 rng(42);
        std::normal_distribution<float> normal(0.f, 1.f);
        for (const auto& in : model.inputs()) {
          SY_CHECK(in.dtype == DType::kFloat32 && in.rank_known, "random inputs need float32 inputs of known rank; give --inputs");
          Shape s;
          for (int64_t d : in.shape) s.push_back(d < 0 ? max_batch * 4 : d);
          Tensor t(DType::kFloat32, s);
          for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = normal(rng);
          arrays.emplace_back(in.name, t);
        }
      }
      InputPool pool(std::move(arrays));
      fmt::print("[ INFO ] model {}: {} stream(s) x {} thread(s), hint {}, {} request(s) in flight, MoE fusion {}, {} kernels\n",
                 opt->model, model.streams(), model.threads_per_stream(), opt->hint, requests, opt->compile.no_fuse ? "off" : "on",
                 kernel_isa());
      if (model.auto_batch() > 1) fmt::print("[ INFO ] auto-batching: queued requests stacked up to {} per run\n", model.auto_batch());
      else if (options.hint == PerformanceHint::kThroughput) fmt::print("[ INFO ] auto-batching {}\n", model.auto_batch_note());
      std::vector<CaseResult> results;
      for (int64_t batch : opt->batches) {
        results.push_back(run_case(model, pool, batch, requests, opt->warmup, opt->duration));
        if (isatty(2)) std::fprintf(stderr, "\r%60s\r", "");
        const CaseResult& r = results.back();
        fmt::print("[ INFO ] batch {:>5}: {:>8} calls in {:.1f} s | latency us: median {:.1f}  p90 {:.1f}  p99 {:.1f}  min {:.1f}  max {:.1f} | throughput {:.0f} rows/s\n",
                   r.batch, r.calls, r.seconds, r.p50, r.p90, r.p99, r.min, r.max, r.throughput);
      }
      const AutoBatchStats stats = model.auto_batch_stats();
      if (stats.batched_runs > 0)
        fmt::print("[ INFO ] auto-batching: {} requests ran in {} stacked runs ({:.1f} per run)\n", stats.batched_requests,
                   stats.batched_runs, static_cast<double>(stats.batched_requests) / static_cast<double>(stats.batched_runs));
      result.update({{"engine", "switchyard"}, {"model", opt->model}, {"threads", threads}, {"streams", model.streams()},
                     {"auto_batch", model.auto_batch()}, {"batched_runs", stats.batched_runs}, {"batched_requests", stats.batched_requests},
                     {"hint", opt->hint}, {"requests", requests}, {"fused", !opt->compile.no_fuse}});
      for (const auto& r : results)
        result["results"].push_back({{"batch", r.batch}, {"calls", r.calls}, {"p50_us", r.p50}, {"p90_us", r.p90},
                                     {"p99_us", r.p99}, {"min_us", r.min}, {"max_us", r.max}, {"throughput", r.throughput}});
      // The first batch size's numbers at top level, for scripts that measure one case.
      const CaseResult& first = results.front();
      result.update({{"batch", first.batch}, {"calls", first.calls}, {"p50_us", first.p50}, {"p90_us", first.p90},
                     {"p99_us", first.p99}, {"min_us", first.min}, {"max_us", first.max}, {"throughput", first.throughput}});
      if (!opt->plot.empty()) write_plot(opt->plot, results, opt->model + " (" + opt->hint + ", " + std::to_string(threads) + " threads)");
    }
    if (!opt->json.empty()) {
      std::ofstream out(opt->json);
      SY_CHECK(out, "cannot write '" + opt->json + "'");
      out << result.dump(2) << "\n";
    }
  });
}

}  // namespace switchyard::cli
