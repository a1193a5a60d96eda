// Runs the ONNX backend node test cases shipped in the PyPI `onnx` package
// (onnx/backend/test/data/node/*/model.onnx + test_data_set_*/{input,output}_*.pb) for every
// operator Switchyard implements, compares with the reference outputs (rtol 1e-3, atol 1e-7, as
// ONNX's backend tests do), and writes a per-op table. Exits non-zero if a case fails that is not
// listed, with its reason, in known_failures.txt.
//
//   switchyard_conformance DATA_DIR KNOWN_FAILURES.txt TABLE.md
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "onnx/onnx_import.h"
#include "runtime/executor.h"
#include "switchyard/engine.h"

using namespace switchyard;
namespace fs = std::filesystem;

namespace {

struct OpStats {
  int cases = 0, passed = 0, known = 0;
};

// Reads op types straight from the protobuf, so that cases are classified even when the model
// uses types the importer refuses.
void collect_ops(const onnx::GraphProto& g, std::set<std::pair<std::string, std::string>>& ops) {
  for (const auto& n : g.node()) {
    ops.insert({n.domain() == "ai.onnx" ? "" : n.domain(), n.op_type()});
    for (const auto& a : n.attribute())
      if (a.has_g()) collect_ops(a.g(), ops);
  }
}

bool implements_all(const fs::path& model_path, std::string& primary) {
  onnx::ModelProto proto;
  std::ifstream in(model_path, std::ios::binary);
  if (!proto.ParseFromIstream(&in)) return false;
  std::map<std::string, int> opsets;
  for (const auto& os : proto.opset_import()) opsets[os.domain() == "ai.onnx" ? "" : os.domain()] = static_cast<int>(os.version());
  std::set<std::pair<std::string, std::string>> ops;
  collect_ops(proto.graph(), ops);
  for (const auto& [domain, op] : ops)
    if (!OpRegistry::instance().find(domain, op, opsets[domain])) return false;
  // Named after the top-level operator (subgraph bodies of If/Loop do not count).
  std::set<std::string> names;
  for (const auto& n : proto.graph().node())
    if (n.op_type() != "Constant" || proto.graph().node_size() == 1) names.insert(n.op_type());
  primary = names.size() == 1 ? *names.begin() : "(multi-op graphs, e.g. function expansions)";
  return true;
}


bool close_enough(const Tensor& got, const Tensor& want, std::string& why) {
  if (got.shape() != want.shape()) {
    why = "shape " + shape_str(got.shape()) + " != expected " + shape_str(want.shape());
    return false;
  }
  if (got.dtype() != want.dtype()) {
    why = std::string("dtype ") + dtype_name(got.dtype()) + " != expected " + dtype_name(want.dtype());
    return false;
  }
  for (int64_t i = 0; i < got.numel(); ++i) {
    double a = got.as_double(i), b = want.as_double(i);
    if (std::isnan(a) && std::isnan(b)) continue;
    if (std::isinf(a) || std::isinf(b)) {
      if (a == b) continue;
    } else if (std::fabs(a - b) <= 1e-7 + 1e-3 * std::fabs(b)) {
      continue;
    }
    why = "element " + std::to_string(i) + ": got " + std::to_string(a) + ", expected " + std::to_string(b);
    return false;
  }
  return true;
}

// Runs one case; returns "" on success or the reason of failure.
std::string run_case(const fs::path& dir) {
  Engine engine;
  CompiledModel model = engine.compile((dir / "model.onnx").string(), {1});
  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0) sets.push_back(e.path());
  std::sort(sets.begin(), sets.end());
  for (const auto& set : sets) {
    InferRequest request = model.create_infer_request();
    std::vector<Tensor> inputs;
    for (size_t i = 0; fs::exists(set / ("input_" + std::to_string(i) + ".pb")); ++i)
      inputs.push_back(load_tensor_pb((set / ("input_" + std::to_string(i) + ".pb")).string()));
    // Inputs are positional; optional inputs omitted from the file list are not model inputs either.
    if (inputs.size() != model.inputs().size())
      return "data set has " + std::to_string(inputs.size()) + " inputs, model " + std::to_string(model.inputs().size());
    for (size_t i = 0; i < inputs.size(); ++i) request.set_input(model.inputs()[i].name, inputs[i]);
    request.infer();
    for (size_t i = 0; fs::exists(set / ("output_" + std::to_string(i) + ".pb")); ++i) {
      Tensor want = load_tensor_pb((set / ("output_" + std::to_string(i) + ".pb")).string());
      std::string why;
      if (!close_enough(request.output(i), want, why)) return "output " + std::to_string(i) + ": " + why;
    }
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s DATA_DIR KNOWN_FAILURES.txt TABLE.md\n", argv[0]);
    return 2;
  }
  const fs::path data(argv[1]);
  std::map<std::string, std::string> known;  // case -> reason
  {
    std::ifstream in(argv[2]);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      auto sp = line.find_first_of(" \t");
      known[line.substr(0, sp)] = sp == std::string::npos ? "" : line.substr(line.find_first_not_of(" \t#", sp));
    }
  }
  std::vector<fs::path> cases;
  for (const auto& e : fs::directory_iterator(data))
    if (e.is_directory()) cases.push_back(e.path());
  std::sort(cases.begin(), cases.end());

  std::map<std::string, OpStats> stats;
  int unexpected = 0, skipped = 0, total = 0, passed = 0;
  std::vector<std::string> fixed;
  for (const auto& dir : cases) {
    const std::string name = dir.filename().string();
    std::string op;
    if (!implements_all(dir / "model.onnx", op)) {
      ++skipped;  // an operator Switchyard does not implement
      continue;
    }
    std::string why;
    try {
      why = run_case(dir);
    } catch (const std::exception& e) {
      why = e.what();
    }
    OpStats& s = stats[op];
    ++s.cases;
    ++total;
    if (why.empty()) {
      ++s.passed;
      ++passed;
      if (known.count(name)) fixed.push_back(name);
    } else if (known.count(name)) {
      ++s.known;
    } else {
      ++unexpected;
      std::printf("FAIL %s [%s]: %s\n", name.c_str(), op.c_str(), why.c_str());
    }
  }
  std::ofstream table(argv[3]);
  table << "# ONNX backend node tests\n\n"
        << "Generated by `make conformance` from the node test cases of the PyPI `onnx` package (see\n"
        << "`tests/conformance/`). A case runs when Switchyard implements every operator in it; cases of\n"
        << "operators it does not implement are not listed. Known failures, with reasons:\n"
        << "`tests/conformance/known_failures.txt`.\n\n"
        << "| op | cases | passed | known failures |\n| --- | ---: | ---: | ---: |\n";
  for (const auto& [op, s] : stats) table << "| " << op << " | " << s.cases << " | " << s.passed << " | " << s.known << " |\n";
  table << "| **total** | " << total << " | " << passed << " | " << (total - passed - unexpected) << " |\n";
  for (const auto& f : fixed) std::printf("NOTE %s passes now: remove it from the known failures\n", f.c_str());
  std::printf("conformance: %d cases run, %d passed, %d known failures, %d unexpected failures, %d cases of unimplemented ops skipped\n",
              total, passed, total - passed - unexpected, unexpected, skipped);
  return unexpected == 0 ? 0 : 1;
}
