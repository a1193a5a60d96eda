// libFuzzer target: .npz archive bytes -> tensors (libzip + the .npy parser).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <unistd.h>

#include "io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/switchyard_fuzz_" + std::to_string(getpid()) + ".npz";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    switchyard::read_npz(path);
  } catch (const switchyard::Error&) {
  }
  return 0;
}
