// The CPU kernels' vector math at the width this build uses (kernels/vec_math.h: 16, 8 or 4
// lanes); CI builds it native (build/) and 4-lane (scripts/sanitize.sh).
#include "kernels/vec_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "tests/test_util.h"

namespace caption {
namespace {

namespace vec = cpu::vec;
using test::bits_float;
using test::float_bits;

// Distance in units in the last place between two finite non-negative floats.
int64_t ulps(float a, float b) { return std::abs(int64_t(float_bits(a)) - int64_t(float_bits(b))); }

float scalar(vec::vf (*f)(vec::vf), float x) { return f(vec::splat(x))[0]; }

// Every 61st float of [-105, 105], a chunk at a time through map.
TEST(VecMath, ExpWithinOneUlpOfCorrectlyRounded) {
  constexpr int kChunk = 4096;
  std::vector<float> xs, got(kChunk);
  int64_t worst = 0;
  for (uint32_t u = 0; u < float_bits(105.f);) {
    xs.clear();
    for (; u < float_bits(105.f) && xs.size() + 2 <= kChunk; u += 61) xs.push_back(bits_float(u)), xs.push_back(-bits_float(u));
    vec::map(xs.data(), got.data(), int(xs.size()), vec::exp);
    for (size_t i = 0; i < xs.size(); ++i) {
      const float want = float(std::exp(double(xs[i])));  // double exp is exact enough to round once
      if (std::isinf(want)) {
        ASSERT_TRUE(std::isinf(got[i])) << xs[i];
        continue;
      }
      worst = std::max(worst, ulps(got[i], want));
      ASSERT_LE(ulps(got[i], want), 1) << "x = " << xs[i] << ": " << got[i] << " vs " << want;
    }
  }
  RecordProperty("worst_ulps", int(worst));
}

TEST(VecMath, SigmoidAndTanhMatchDouble) {
  double worst_sig = 0, worst_tanh = 0;
  for (float x = -30.f; x <= 30.f; x += 0.0137f) {
    const double s = 1 / (1 + std::exp(-double(x))), t = std::tanh(double(x));
    worst_sig = std::max(worst_sig, std::abs(scalar(vec::sigmoid, x) - s) / s);
    if (t != 0) worst_tanh = std::max(worst_tanh, std::abs(scalar(vec::tanh, x) - t) / std::abs(t));
  }
  EXPECT_LT(worst_sig, 4e-7);  // a few float ulps (2^-23 = 1.2e-7)
  EXPECT_LT(worst_tanh, 4e-7);
}

TEST(VecMath, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(scalar(vec::exp, -inf), 0.f);
  EXPECT_EQ(scalar(vec::exp, inf), inf);
  EXPECT_TRUE(std::isnan(scalar(vec::exp, nan)));
  EXPECT_EQ(scalar(vec::exp, 0.f), 1.f);
  EXPECT_LT(scalar(vec::sigmoid, -inf), 1e-37f);  // 1 / (2 + expm1(88)): the clamp, not 0
  EXPECT_EQ(scalar(vec::sigmoid, inf), 1.f);
  EXPECT_TRUE(std::isnan(scalar(vec::sigmoid, nan)));
  EXPECT_EQ(scalar(vec::tanh, inf), 1.f);
  EXPECT_EQ(scalar(vec::tanh, -inf), -1.f);
  EXPECT_TRUE(std::isnan(scalar(vec::tanh, nan)));
  EXPECT_EQ(float_bits(scalar(vec::tanh, 0.f)), float_bits(0.f));
  EXPECT_EQ(float_bits(scalar(vec::tanh, -0.f)), float_bits(-0.f));
}

TEST(VecMath, SqrtIsCorrectlyRounded) {
  for (float x = 0.f; x < 1e6f; x = x * 1.37f + 1e-3f) EXPECT_EQ(scalar(vec::sqrt, x), std::sqrt(x)) << x;
}

// An element's result is the same in every lane and in the padded tail, for every length.
TEST(VecMath, MapDoesNotDependOnLaneOrTail) {
  std::vector<float> in(3 * vec::kLanes + 1);
  for (size_t i = 0; i < in.size(); ++i) in[i] = 0.731f * float(i) - 9.f;
  for (int n = 1; n <= int(in.size()); ++n) {
    std::vector<float> out(n, -1.f);
    vec::map(in.data(), out.data(), n, vec::tanh);
    for (int i = 0; i < n; ++i) ASSERT_EQ(float_bits(out[i]), float_bits(scalar(vec::tanh, in[i]))) << "n " << n << " i " << i;
  }
}

TEST(VecMath, SumLanesAddsEveryLane) {
  vec::vf v;
  for (int i = 0; i < vec::kLanes; ++i) v[i] = float(1 << i);
  EXPECT_EQ(vec::sum_lanes(v), float((1 << vec::kLanes) - 1));
  v[vec::kLanes - 1] = 1e9f;
  EXPECT_EQ(vec::max_lanes(v), 1e9f);
}

}  // namespace
}  // namespace caption
