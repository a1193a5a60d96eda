#include <cstdio>
#include <exception>
#include <string>

#include "commands.h"
#include "server/server.h"
#include "switchyard/error.h"

int main(int argc, char** argv) {
  // `serve` waits for SIGTERM/SIGINT with sigwait: they must be blocked before any thread starts (the
  // engine's thread pools start at compile). Other commands keep the default action.
  if (argc > 1 && std::string(argv[1]) == "serve") switchyard::serve::block_termination_signals();
  CLI::App app{"Switchyard: a sparse Mixture-of-Experts inference engine for ONNX models"};
  app.require_subcommand(1);
  switchyard::cli::add_run_command(app);
  switchyard::cli::add_eval_command(app);
  switchyard::cli::add_inspect_command(app);
  switchyard::cli::add_ops_command(app);
  switchyard::cli::add_bench_command(app);
  switchyard::cli::add_quantize_command(app);
  switchyard::cli::add_serve_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const switchyard::Error& e) {
    std::fprintf(stderr, "switchyard: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "switchyard: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
