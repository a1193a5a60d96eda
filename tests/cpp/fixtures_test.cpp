// Every fixture exported by scripts/make_fixtures.py runs and matches PyTorch (max abs diff <= 1e-4).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "io/npy.h"
#include "switchyard/engine.h"

using namespace switchyard;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> fixture_names() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(fs::path(SWITCHYARD_SOURCE_DIR) / "tests" / "fixtures"))
    if (e.path().extension() == ".onnx") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(a.as_double(i) - b.as_double(i)));
  return m;
}

class Fixture : public ::testing::TestWithParam<std::string> {};

TEST_P(Fixture, MatchesPyTorch) {
  const fs::path dir = fs::path(SWITCHYARD_SOURCE_DIR) / "tests" / "fixtures";
  const std::string name = GetParam();
  Engine engine;
  for (int threads : {1, 2}) {
    CompiledModel model = engine.compile((dir / (name + ".onnx")).string(), {threads});
    InferRequest request = model.create_infer_request();
    auto inputs = read_npz((dir / (name + ".inputs.npz")).string());
    for (const auto& [n, t] : inputs) request.set_input(n, t);
    // Twice: the second run reuses the planned buffers and must give the same answer.
    for (int run = 0; run < 2; ++run) {
      request.infer();
      for (const auto& [n, expected] : read_npz((dir / (name + ".expected.npz")).string())) {
        const Tensor& got = request.output(n);
        ASSERT_EQ(got.shape(), expected.shape()) << n;
        EXPECT_LE(max_abs_diff(got, expected), 1e-4) << name << " output " << n << " threads " << threads;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(PyTorchExports, Fixture, ::testing::ValuesIn(fixture_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
