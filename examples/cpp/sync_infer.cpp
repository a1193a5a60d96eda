// Classify Fashion-MNIST test images one at a time with the synchronous API.
//   build/examples/example_sync_infer models/seed_classifier.onnx [N]
#include <algorithm>
#include <cstdio>
#include <string>

#include "io/idx.h"
#include "switchyard/engine.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL.onnx [N]\n", argv[0]);
    return 2;
  }
  const int n = argc > 2 ? std::stoi(argv[2]) : 100;
  try {
    switchyard::Engine engine;
    switchyard::CompiledModel model = engine.compile(argv[1], {.threads = 2});
    switchyard::InferRequest request = model.create_infer_request();
    auto images = switchyard::read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
    auto labels = switchyard::read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz");
    float pixels[784];
    int correct = 0;
    for (int i = 0; i < n; ++i) {
      for (int p = 0; p < 784; ++p) pixels[p] = images.data<uint8_t>()[i * 784 + p] / 255.f;
      request.set_input("image", switchyard::Tensor::wrap(switchyard::DType::kFloat32, {1, 1, 28, 28}, pixels));
      request.infer();
      const float* logits = request.output("logits").data<float>();
      correct += std::max_element(logits, logits + 10) - logits == labels.data<uint8_t>()[i];
    }
    std::printf("sync: %d / %d correct\n", correct, n);
  } catch (const switchyard::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
