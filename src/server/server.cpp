#include "server/server.h"

#include <signal.h>

#include <memory>

#include "server/grpc_frontend.h"
#include "server/http_frontend.h"
#include "server/metrics.h"
#include "server/model_repository.h"
#include "switchyard/engine.h"

namespace switchyard::serve {
namespace {

sigset_t termination_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

std::string page(const ModelRepository& repository) {
  std::vector<MetricsSource> sources;
  for (const auto& m : repository.models())
    sources.push_back({m->name, m->version_name, m->metrics.get(), m->batcher->expert_load()});
  return render_metrics(sources);
}

}  // namespace

void block_termination_signals() {
  const sigset_t set = termination_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void serve(const ServeOptions& options, std::FILE* log) {
  block_termination_signals();
  ModelRepository repository(options.model_repository, {options.threads, options.isa});
  for (const auto& m : repository.models())
    std::fprintf(log, "switchyard serve: model %s version %s: %d stream(s) x %d thread(s), %s, batching %s\n",
                 m->name.c_str(), m->version_name.c_str(), m->model.streams(), m->model.threads_per_stream(),
                 kernel_isa().c_str(),
                 m->batching.enabled ? ("on (max_batch_size " + std::to_string(m->batching.max_batch_size) +
                                        ", max_queue_delay " + std::to_string(m->batching.max_queue_delay_us) + " us)")
                                           .c_str()
                                     : m->batching_note.c_str());

  std::unique_ptr<HttpFrontend> http;
  std::unique_ptr<GrpcFrontend> grpc;
  std::unique_ptr<MetricsFrontend> metrics;
  if (options.http_port >= 0)
    http = std::make_unique<HttpFrontend>(
        repository, HttpOptions{options.address, options.http_port, options.max_request_bytes, options.http_threads});
  if (options.grpc_port >= 0)
    grpc = std::make_unique<GrpcFrontend>(repository, options.address, options.grpc_port, options.max_request_bytes,
                                          options.grpc_threads, options.busy_poll_us);
  if (options.metrics_port >= 0)
    metrics = std::make_unique<MetricsFrontend>(options.address, options.metrics_port, [&repository] { return page(repository); });
  if (http) http->start();
  if (metrics) metrics->start();
  std::fprintf(log, "switchyard serve: ready: http %d grpc %d metrics %d (address %s)\n", http ? http->port() : -1,
               grpc ? grpc->port() : -1, metrics ? metrics->port() : -1, options.address.c_str());
  std::fflush(log);

  const sigset_t set = termination_signals();
  int signal_number = 0;
  sigwait(&set, &signal_number);
  std::fprintf(log, "switchyard serve: %s: finishing the requests in flight\n", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  std::fflush(log);
  // Front ends first (they stop accepting and wait for the requests they hold, which the batchers still
  // run), then the batchers, then the metrics page.
  if (grpc) grpc->shutdown();
  if (http) http->shutdown();
  repository.stop();
  if (metrics) metrics->shutdown();
  std::fprintf(log, "switchyard serve: stopped\n");
  std::fflush(log);
}

}  // namespace switchyard::serve
