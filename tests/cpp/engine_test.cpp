// The C++ API and the executor: buffer reuse, errors that leave the engine usable, thread pool.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "compiler/pass_pipeline.h"
#include "io/npy.h"
#include "onnx/onnx_import.h"
#include "runtime/executor.h"
#include "switchyard/engine.h"

using namespace switchyard;
namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(SWITCHYARD_SOURCE_DIR) / "tests" / "fixtures";
const fs::path kSeed = fs::path(SWITCHYARD_SOURCE_DIR) / "models" / "seed_classifier.onnx";

Tensor random_images(int64_t batch, unsigned seed) {
  Tensor t(DType::kFloat32, {batch, 1, 28, 28});
  uint32_t s = seed * 2654435761u + 1;
  for (int64_t i = 0; i < t.numel(); ++i) {
    s = s * 1664525u + 1013904223u;
    t.data<float>()[i] = static_cast<float>(s >> 8) / 16777216.f;
  }
  return t;
}

TEST(Executor, NoAllocationOnceShapesRepeat) {
  Model model = load_onnx_file(kSeed.string());
  run_graph_passes(model);
  auto plan = compile_plan(model.graph);
  ThreadPool pool(2);
  ExecState state(plan, &pool, nullptr);
  Tensor big = random_images(64, 1);
  state.run({&big});
  const size_t warm = state.allocations();
  EXPECT_GT(warm, 0u);
  // Different images, same batch: routing (and NonZero sizes) change, buffers do not grow past
  // the high-water mark of a batch that sends all rows to one expert... so warm up with both.
  for (unsigned seed = 2; seed < 6; ++seed) {
    Tensor x = random_images(64, seed);
    state.run({&x});
  }
  const size_t after_warmup = state.allocations();
  for (int i = 0; i < 20; ++i) {
    Tensor x = random_images(64, 2 + i % 4);
    state.run({&x});
  }
  EXPECT_EQ(state.allocations(), after_warmup);
  // Smaller batches fit in the same buffers.
  Tensor small = random_images(5, 9);
  state.run({&small});
  EXPECT_EQ(state.allocations(), after_warmup);
}

TEST(Executor, LivenessSharesBuffers) {
  Model model = load_onnx_file(kSeed.string());
  run_graph_passes(model, PassOptions{false});  // the op-by-op graph
  auto plan = compile_plan(model.graph);
  size_t computed = 0;
  for (const Node& n : model.graph->nodes) computed += n.outputs.size();
  EXPECT_LT(static_cast<size_t>(plan->num_slots) * 3, computed);  // far fewer buffers than values
}

TEST(Engine, ErrorsLeaveTheRequestUsable) {
  Engine engine;
  CompiledModel model = engine.compile(kSeed.string(), {2});
  InferRequest request = model.create_infer_request();
  Tensor good = random_images(3, 7);
  request.set_input("image", good);
  request.infer();
  Tensor expected = request.output("logits").clone();

  Tensor wrong_dtype(DType::kFloat64, {3, 1, 28, 28});
  EXPECT_THROW(request.set_input("image", wrong_dtype), Error);
  Tensor wrong_shape(DType::kFloat32, {3, 1, 28, 29});
  EXPECT_THROW(request.set_input("image", wrong_shape), Error);
  EXPECT_THROW(request.set_input("nope", good), Error);
  EXPECT_THROW(request.output("nope"), Error);

  request.set_input("image", good);
  request.infer();
  const Tensor& again = request.output("logits");
  ASSERT_EQ(again.shape(), expected.shape());
  for (int64_t i = 0; i < again.numel(); ++i) EXPECT_EQ(again.data<float>()[i], expected.data<float>()[i]);
}

// take_output hands the buffer over: the next run writes elsewhere and the taken tensor keeps its values.
TEST(Engine, TakeOutputHandsTheBufferOver) {
  Engine engine;
  CompiledModel model = engine.compile(kSeed.string(), {2});
  InferRequest request = model.create_infer_request();
  Tensor a = random_images(5, 1), b = random_images(5, 2);
  request.set_input("image", b);
  request.infer();
  Tensor expected_b = request.output(0).clone();
  request.set_input("image", a);
  request.infer();
  Tensor expected_a = request.output(0).clone();
  Tensor taken = request.take_output(0);
  EXPECT_EQ(taken.raw(), request.output(0).raw());  // no copy
  request.set_input("image", b);
  request.infer();
  EXPECT_NE(request.output(0).raw(), taken.raw());
  for (int64_t i = 0; i < taken.numel(); ++i) {
    EXPECT_EQ(taken.data<float>()[i], expected_a.data<float>()[i]);
    EXPECT_EQ(request.output(0).data<float>()[i], expected_b.data<float>()[i]);
  }
}

TEST(Engine, RuntimeFailureThenSuccess) {
  // MatMul with data-dependent inner dims: a bad pair fails in the kernel, a good pair then works.
  std::string path = (kFixtures / "tiny_attention_trace.onnx").string();
  Engine engine;
  CompiledModel model = engine.compile(path, {1});
  InferRequest request = model.create_infer_request();
  Tensor bad(DType::kFloat32, {2, 6, 31});
  EXPECT_THROW(request.set_input("x", bad), Error);  // declared width 32
  auto inputs = read_npz((kFixtures / "tiny_attention_trace.inputs.npz").string());
  request.set_input("x", inputs[0].second);
  EXPECT_NO_THROW(request.infer());
}

TEST(Engine, CorruptModelBytes) {
  Engine engine;
  EXPECT_THROW(engine.compile_bytes(std::string("\x08\x07garbage", 9)), Error);
  std::ifstream in(kSeed, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (size_t cut : {size_t{10}, bytes.size() / 3, bytes.size() - 7}) {
    try {
      engine.compile_bytes(bytes.substr(0, cut));
      ADD_FAILURE() << "truncated model at " << cut << " compiled";
    } catch (const Error& e) {
      EXPECT_FALSE(std::string(e.what()).empty());
    }
  }
  EXPECT_NO_THROW(engine.compile_bytes(bytes));
}

TEST(ThreadPool, CoversEveryIndexOnce) {
  ThreadPool pool(2);
  for (int64_t n : {1, 7, 1000, 100003}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    pool.parallel_for(n, 3, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
    });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  }
}

TEST(Npy, RoundTripThroughNpz) {
  fs::path dir = fs::temp_directory_path() / "switchyard_npy_test";
  fs::create_directories(dir);
  Tensor a(DType::kInt64, {2, 3});
  for (int i = 0; i < 6; ++i) a.data<int64_t>()[i] = i * 1000000000000LL;
  Tensor b(DType::kBool, {4});
  b.data<bool>()[2] = true;
  Tensor c(DType::kFloat32, {});
  c.data<float>()[0] = 3.5f;
  write_npz((dir / "x.npz").string(), {{"a", a}, {"b", b}, {"c", c}});
  auto back = read_npz((dir / "x.npz").string());
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[0].first, "a");
  EXPECT_EQ(back[0].second.shape(), a.shape());
  EXPECT_EQ(back[0].second.data<int64_t>()[5], 5000000000000LL);
  EXPECT_TRUE(back[1].second.data<bool>()[2]);
  EXPECT_EQ(back[2].second.shape(), Shape{});
  EXPECT_EQ(back[2].second.data<float>()[0], 3.5f);
  fs::remove_all(dir);
}

}  // namespace

namespace {

TEST(Engine, MemoryCeiling) {
  Engine engine;
  CompileOptions tight;
  tight.memory_limit_bytes = 1000;  // less than the weights
  try {
    engine.compile(kSeed.string(), tight);
    ADD_FAILURE() << "compiled over the ceiling";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the weights alone take"), std::string::npos) << e.what();
  }
  CompileOptions some;
  some.memory_limit_bytes = 200000;  // weights (~70 KB) fit; a batch of 4096 images does not
  CompiledModel model = engine.compile(kSeed.string(), some);
  InferRequest request = model.create_infer_request();
  Tensor big(DType::kFloat32, {4096, 1, 28, 28});
  request.set_input("image", big);
  try {
    request.infer();
    ADD_FAILURE() << "ran over the ceiling";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("memory ceiling exceeded"), std::string::npos) << e.what();
  }
  Tensor small = random_images(2, 3);  // the same request still serves what fits
  request.set_input("image", small);
  EXPECT_NO_THROW(request.infer());
}

}  // namespace
