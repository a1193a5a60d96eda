// The library-free elementwise math the MoE layer vectorises (src/kernels/vector_math.h), against <cmath>.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/vector_math.h"

namespace switchyard {
namespace {

TEST(VectorMath, ErfTanhAndGeluMatchTheLibrary) {
  double erf_err = 0, tanh_err = 0, gelu_err = 0;
  for (int i = -200000; i <= 200000; ++i) {
    const float x = static_cast<float>(i) * 1e-4f;  // [-20, 20]
    erf_err = std::max(erf_err, std::fabs(static_cast<double>(erf_approx(x)) - std::erf(static_cast<double>(x))));
    tanh_err = std::max(tanh_err, std::fabs(static_cast<double>(tanh_approx(x)) - std::tanh(static_cast<double>(x))));
    const double g = 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    gelu_err = std::max(gelu_err, std::fabs(gelu_erf(x) - g) / std::max(1.0, std::fabs(g)));
  }
  EXPECT_LE(erf_err, 1e-6);  // Abramowitz-Stegun 1.5e-7 plus float rounding
  EXPECT_LE(tanh_err, 1e-6);
  EXPECT_LE(gelu_err, 1e-6);
  EXPECT_EQ(erf_approx(0.f), 0.f);
  EXPECT_TRUE(std::isnan(erf_approx(NAN)));
  EXPECT_EQ(tanh_approx(-1e30f), -1.f);
}

}  // namespace
}  // namespace switchyard
