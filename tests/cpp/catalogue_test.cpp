// The bad-input catalogue through the C++ API: the expected error (or a clean run), and the engine and
// request still serving good inputs afterwards.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/npy.h"
#include "switchyard/engine.h"

using namespace switchyard;
namespace fs = std::filesystem;

namespace {

const fs::path kDir = fs::path(SWITCHYARD_SOURCE_DIR) / "tests" / "catalogue";

std::vector<nlohmann::json> entries() {
  std::ifstream in(kDir / "manifest.json");
  auto j = nlohmann::json::parse(in);
  return {j["entries"].begin(), j["entries"].end()};
}

class Catalogue : public ::testing::TestWithParam<nlohmann::json> {};

TEST_P(Catalogue, ExpectedOutcome) {
  const auto& e = GetParam();
  const std::string expect = e["expect"];
  Engine engine;
  std::string error;
  try {
    CompiledModel model = engine.compile((kDir / e["model"].get<std::string>()).string(), {2});
    InferRequest request = model.create_infer_request();
    if (!e["inputs"].is_null()) {
      const fs::path in = kDir / e["inputs"].get<std::string>();
      if (in.extension() == ".npy") request.set_input("image", read_npy(in.string()));
      else
        for (const auto& [name, t] : read_npz(in.string())) request.set_input(name, t);
    }
    try {
      request.infer();
    } catch (const Error& err) {
      error = err.what();
      // No lost state: the same request serves a good input next.
      if (e["model"] == "seed_classifier.onnx") {
        for (const auto& [name, t] : read_npz((kDir / "good.npz").string())) request.set_input(name, t);
        EXPECT_NO_THROW(request.infer());
      }
    }
  } catch (const Error& err) {
    error = err.what();
  }
  if (expect == "ok") {
    EXPECT_EQ(error, "");
  } else {
    EXPECT_NE(error.find(expect), std::string::npos) << "expected '" << expect << "', got '" << error << "'";
    EXPECT_EQ(error.find('\n'), std::string::npos) << "error spans several lines";
  }
  // The engine itself is unaffected.
  EXPECT_NO_THROW(engine.compile((kDir / "seed_classifier.onnx").string(), {1}));
}

INSTANTIATE_TEST_SUITE_P(BadInputs, Catalogue, ::testing::ValuesIn(entries()), [](const auto& info) {
  std::string n = info.param["name"];
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
});

}  // namespace
