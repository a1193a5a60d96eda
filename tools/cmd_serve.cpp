// `switchyard serve --model-repository DIR`: the KServe v2 (Open Inference Protocol) server over HTTP and
// gRPC, with Prometheus metrics (src/server/).
#include <cstdio>
#include <memory>

#include "commands.h"
#include "server/server.h"

namespace switchyard::cli {

void add_serve_command(CLI::App& app) {
  auto opt = std::make_shared<serve::ServeOptions>();
  std::string isa;
  CLI::App* cmd = app.add_subcommand("serve", "Serve a model repository over KServe v2 HTTP and gRPC, with /metrics");
  cmd->add_option("--model-repository", opt->model_repository, "DIR/<model>/<version>/model.onnx (+ DIR/<model>/config.pbtxt)")
      ->required();
  cmd->add_option("--address", opt->address, "address to listen on (default 0.0.0.0)");
  cmd->add_option("--http-port", opt->http_port, "KServe v2 REST port (0: any free port, -1: off)")->check(CLI::Range(-1, 65535));
  cmd->add_option("--grpc-port", opt->grpc_port, "KServe v2 gRPC port (0: any free port, -1: off)")->check(CLI::Range(-1, 65535));
  cmd->add_option("--metrics-port", opt->metrics_port, "Prometheus /metrics port (0: any free port, -1: off)")
      ->check(CLI::Range(-1, 65535));
  cmd->add_option("--http-threads", opt->http_threads, "HTTP connections served at once (default 128)")->check(CLI::Range(2, 4096));
  cmd->add_option("--grpc-threads", opt->grpc_threads, "gRPC completion-queue threads (0: half the cores, at least 1)")
      ->check(CLI::Range(0, 256));
  cmd->add_option("--busy-poll-us", opt->busy_poll_us,
                  "gRPC: keep polling this long after each event before sleeping, saving a thread wake-up per call "
                  "of a busy client (default 100; 0: never)")
      ->check(CLI::Range(0, 100000));
  cmd->add_option("--max-request-bytes", opt->max_request_bytes, "largest request body / message accepted (default 64 MiB)")
      ->check(CLI::Range(size_t{1024}, size_t{1} << 31));
  cmd->add_option("--threads", opt->threads, "threads per model version unless its config.pbtxt sets them (0: one per core)");
  cmd->add_option("--isa", opt->isa, "cap the CPU kernels: portable | avx2 | avx512 | native")
      ->check(CLI::IsMember({"portable", "avx2", "avx512", "native"}));
  cmd->callback([opt] { serve::serve(*opt, stdout); });
}

}  // namespace switchyard::cli
