#include <gtest/gtest.h>

#include <cmath>

#include "switchyard/tensor.h"

using namespace switchyard;

TEST(Tensor, HalfRoundTrip) {
  for (float v : {0.f, 1.f, -2.5f, 65504.f, 6.1035e-05f, 5.96e-08f, 0.333f}) {
    EXPECT_NEAR(half_to_float(float_to_half(v)), v, std::abs(v) * 1e-3f + 6e-8f) << v;
  }
  EXPECT_TRUE(std::isinf(half_to_float(float_to_half(1e6f))));
}

TEST(Tensor, BFloat16RoundTrip) {
  EXPECT_EQ(bfloat16_to_float(float_to_bfloat16(1.5f)), 1.5f);
  EXPECT_NEAR(bfloat16_to_float(float_to_bfloat16(3.14159f)), 3.14159f, 0.02f);
}

TEST(Tensor, HostileShapesAreRejected) {
  EXPECT_THROW(checked_numel({-1, 3}), Error);
  EXPECT_THROW(checked_numel({int64_t{1} << 40, int64_t{1} << 40}), Error);
  EXPECT_EQ(checked_numel({2, 0, 5}), 0);
}
