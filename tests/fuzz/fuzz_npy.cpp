// libFuzzer target: .npy bytes -> tensor (the parser behind `switchyard run --input/--inputs`).
#include <cstddef>
#include <cstdint>
#include <string>

#include "io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    switchyard::parse_npy(std::string(reinterpret_cast<const char*>(data), size), "fuzz input");
  } catch (const switchyard::Error&) {
  }
  return 0;
}
