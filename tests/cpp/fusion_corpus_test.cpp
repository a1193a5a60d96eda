// MoE fusion on the export corpus (tests/corpus, see scripts/moe_corpus.py): each variant fuses every
// MoE layer its manifest entry lists and matches PyTorch's outputs. Runs under the sanitizers too
// (make test-sanitizers), which is where the matcher meets graphs written in ways we did not write.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "io/npy.h"
#include "switchyard/engine.h"

namespace fs = std::filesystem;
namespace switchyard {
namespace {

const fs::path kCorpus = fs::path(SWITCHYARD_SOURCE_DIR) / "tests" / "corpus";

// (model, MoE layers that must fuse): none for capacity-limited routing, which has no exact fused form.
std::vector<std::pair<std::string, int>> corpus() {
  std::ifstream f(kCorpus / "manifest.json");
  std::vector<std::pair<std::string, int>> out;
  for (const auto& e : nlohmann::json::parse(f))
    out.emplace_back(e["name"].get<std::string>(), e.contains("expect_unfused") ? 0 : e["layers"].get<int>());
  return out;
}

class FusionCorpus : public ::testing::TestWithParam<std::pair<std::string, int>> {};

TEST_P(FusionCorpus, FusesEveryLayerAndMatchesPyTorch) {
  const auto& [name, layers] = GetParam();
  Engine engine;
  CompiledModel model = engine.compile((kCorpus / (name + ".onnx")).string(), {1, true});
  int fused = 0;
  std::string notes;
  for (const auto& n : model.compile_notes()) {
    fused += n.rfind("fused MoE layer", 0) == 0;
    notes += n + "\n";
  }
  EXPECT_EQ(fused, layers) << notes;
  std::map<std::string, Tensor> feeds;
  for (auto& [n, t] : read_npz((kCorpus / (name + ".inputs.npz")).string())) feeds[n] = t;
  auto outputs = model.run(feeds);
  for (const auto& [n, expected] : read_npz((kCorpus / (name + ".expected.npz")).string())) {
    const Tensor& got = outputs.at(n);
    ASSERT_EQ(got.shape(), expected.shape()) << n;
    for (int64_t i = 0; i < got.numel(); ++i)
      ASSERT_NEAR(got.data<float>()[i], expected.data<float>()[i], 1e-4) << n << "[" << i << "]";
  }
}

INSTANTIATE_TEST_SUITE_P(Exports, FusionCorpus, ::testing::ValuesIn(corpus()), [](const auto& info) {
  std::string s = info.param.first;
  std::replace_if(s.begin(), s.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
  return s;
});

}  // namespace
}  // namespace switchyard
