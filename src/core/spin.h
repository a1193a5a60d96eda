// Busy-wait helpers for the short waits of the async runtime, where a sleep and wake-up through a
// condition variable (tens of microseconds on a loaded VM) costs more than a small request itself.
#pragma once

#include <chrono>
#include <thread>

namespace switchyard {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// Spins until ready() or `micros` have passed (the length of a pause differs 10x between CPUs, so
// the budget is time, checked every 64 turns). True if ready() became true.
template <typename Ready>
bool spin_until(Ready&& ready, int micros) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(micros);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (ready()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= deadline) return ready();
  }
}

}  // namespace switchyard
