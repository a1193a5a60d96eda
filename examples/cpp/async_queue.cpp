// Keep 4 requests in flight with an AsyncInferQueue; the callback gets each image's index as user data.
//   build/examples/example_async_queue models/seed_classifier.onnx [N]
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include "io/idx.h"
#include "switchyard/async_queue.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL.onnx [N]\n", argv[0]);
    return 2;
  }
  const int64_t n = argc > 2 ? std::stoll(argv[2]) : 1000;
  try {
    switchyard::Engine engine;
    auto model = engine.compile(argv[1], {.threads = 2, .hint = switchyard::PerformanceHint::kThroughput});
    auto images = switchyard::read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
    auto labels = switchyard::read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz");
    std::vector<float> pixels(static_cast<size_t>(n) * 784);  // preprocessed inputs stay alive until wait_all()
    std::atomic<int> correct{0}, failed{0};
    switchyard::AsyncInferQueue queue(model, 4);
    queue.set_callback([&](switchyard::InferRequest& request, void* user, std::exception_ptr error) {
      if (error) {
        ++failed;
        return;
      }
      const auto i = reinterpret_cast<intptr_t>(user);
      const float* logits = request.output(0).data<float>();
      correct += std::max_element(logits, logits + 10) - logits == labels.data<uint8_t>()[i];
    });
    for (int64_t i = 0; i < n; ++i) {
      float* x = pixels.data() + i * 784;  // preprocessing of image i overlaps inference of earlier ones
      for (int p = 0; p < 784; ++p) x[p] = images.data<uint8_t>()[i * 784 + p] / 255.f;
      queue.start_async({{"image", switchyard::Tensor::wrap(switchyard::DType::kFloat32, {1, 1, 28, 28}, x)}},
                        reinterpret_cast<void*>(static_cast<intptr_t>(i)));
    }
    queue.wait_all();
    std::printf("async: %d / %lld correct, %d failed, %d streams\n", correct.load(), static_cast<long long>(n), failed.load(),
                model.streams());
    return failed.load() == 0 ? 0 : 1;
  } catch (const switchyard::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
