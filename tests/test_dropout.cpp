#include "kernels/dropout.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/philox.h"
#include "tests/test_util.h"

namespace caption {
namespace {

using test::random_vector;

// Known-answer vectors of the Random123 distribution for philox4x32_10.
TEST(Philox, KnownAnswerVectors) {
  struct Kat {
    philox::Block ctr;
    uint32_t k0, k1;
    philox::Block out;
  };
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, 0xffffffff, 0xffffffff,
       {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822, 0x299f31d0,
       {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
  };
  for (const Kat& k : kats) {
    philox::Block r = philox::philox4x32_10(k.ctr, k.k0, k.k1);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(r.w[i], k.out.w[i]) << "word " << i;
  }
}

// Element e of a stream is word e % 4 of the block at counter e / 4: the four words of the first
// known-answer vector (counter 0, key 0) are elements 0-3 of seed 0's stream, and element 4 is
// the next counter's first word.
TEST(Philox, FourElementsPerDraw) {
  const uint32_t words[4] = {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8};
  for (int e = 0; e < 4; ++e) EXPECT_EQ(philox::uniform(0, e), float(words[e] >> 8) / 16777216.f) << "element " << e;
  EXPECT_EQ(philox::uniform(0, 4), philox::to_uniform(philox::draw(0, 1).w[0]));
  EXPECT_EQ(philox::uniform(0, 4 * 0x100000000ull + 2), philox::to_uniform(philox::draw(0, 0x100000000ull).w[2]));
}

TEST(Philox, UniformIsUniform) {
  const int n = 200000, bins = 16;
  std::vector<int> hist(bins);
  double sum = 0, sum2 = 0;
  for (int i = 0; i < n; ++i) {
    // Crosses the counters' 2^32 boundary (element 2^34), where the counter's high word starts.
    float u = philox::uniform(0x123456789abcdefull, (uint64_t(1) << 34) - 100 + i);
    ASSERT_GE(u, 0.f);
    ASSERT_LT(u, 1.f);
    sum += u, sum2 += double(u) * u;
    ++hist[int(u * bins)];
  }
  EXPECT_NEAR(sum / n, 0.5, 0.005);
  EXPECT_NEAR(sum2 / n - (sum / n) * (sum / n), 1.0 / 12, 0.002);
  for (int b = 0; b < bins; ++b) EXPECT_NEAR(hist[b], n / bins, 0.05 * n / bins) << "bin " << b;
  EXPECT_NE(philox::uniform(1, 7), philox::uniform(2, 7));
}

TEST(Dropout, KeepRateAndScale) {
  const size_t n = 100000;
  const float p = 0.3f;
  auto x = random_vector(n, 1, 0.5f, 1.5f);  // never zero, so a zero output means dropped
  std::vector<float> y(n);
  cpu::dropout_forward(x.data(), y.data(), n, p, 42, 0);
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i) {
    if (y[i] != 0.f) {
      ++kept;
      EXPECT_EQ(y[i], x[i] * (1.0f / (1.0f - p)));
    }
  }
  EXPECT_NEAR(double(kept) / n, 1.0 - p, 0.01);
}

TEST(Dropout, ZeroProbabilityCopies) {
  auto x = random_vector(1001, 2);
  std::vector<float> y(x.size());
  cpu::dropout_forward(x.data(), y.data(), x.size(), 0.f, 3, 0);
  EXPECT_EQ(y, x);
  cpu::dropout_backward(x.data(), y.data(), x.size(), 0.f, 3, 0);
  EXPECT_EQ(y, x);
}

// Element i of a call is element offset + i of the stream: a call at offset k reproduces the tail
// of a call at 0.
TEST(Dropout, OffsetShiftsTheStream) {
  const size_t n = 777, k = 123;
  auto x = random_vector(n, 4);
  std::vector<float> whole(n), tail(n - k);
  cpu::dropout_forward(x.data(), whole.data(), n, 0.5f, 9, 0);
  cpu::dropout_forward(x.data() + k, tail.data(), n - k, 0.5f, 9, k);
  EXPECT_EQ(tail, std::vector<float>(whole.begin() + k, whole.end()));
  std::vector<float> other(n);
  cpu::dropout_forward(x.data(), other.data(), n, 0.5f, 10, 0);
  EXPECT_NE(other, whole);
}

TEST(Dropout, OffsetFromMemoryReplacesTheArgument) {
  Context ctx(Device::CPU);
  const size_t n = 1001;
  auto x = random_vector(n, 9);
  const uint64_t offset = (uint64_t(5) << 32) + 3;
  std::vector<float> want(n), got(n, 7.f), dwant(n), dgot(n, 7.f);
  cpu::dropout_forward(x.data(), want.data(), n, 0.4f, 11, offset);
  cpu::dropout_backward(x.data(), dwant.data(), n, 0.4f, 11, offset);
  PoolBuffer<uint64_t> word(ctx.pool(), 1);
  ctx.upload(word.data(), &offset, sizeof(offset));
  dropout_forward(ctx.exec(), x.data(), got.data(), n, 0.4f, 11, 0, word.data());
  dropout_backward(ctx.exec(), x.data(), dgot.data(), n, 0.4f, 11, 0, word.data());
  EXPECT_EQ(got, want);
  EXPECT_EQ(dgot, dwant);
}

TEST(Dropout, InPlaceMatchesOutOfPlace) {
  auto x = random_vector(513, 5);
  std::vector<float> y(x.size()), z = x;
  cpu::dropout_forward(x.data(), y.data(), x.size(), 0.25f, 11, 77);
  cpu::dropout_forward(z.data(), z.data(), z.size(), 0.25f, 11, 77);
  EXPECT_EQ(z, y);
  std::vector<float> dx(x.size()), dz = x;
  cpu::dropout_backward(x.data(), dx.data(), x.size(), 0.25f, 11, 77);
  cpu::dropout_backward(dz.data(), dz.data(), dz.size(), 0.25f, 11, 77);
  EXPECT_EQ(dz, dx);
}

// loss = sum(dropout(x) * w); backward of w must equal the central differences in x.
TEST(Dropout, BackwardMatchesFiniteDifferences) {
  const size_t n = 61;
  const float p = 0.4f;
  const uint64_t seed = 5, offset = 1000;
  auto x = random_vector(n, 6), w = random_vector(n, 7);
  std::vector<float> y(n), dx(n);
  auto loss = [&] {
    cpu::dropout_forward(x.data(), y.data(), n, p, seed, offset);
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += double(y[i]) * w[i];
    return s;
  };
  cpu::dropout_backward(w.data(), dx.data(), n, p, seed, offset);
  size_t zeros = 0;
  for (size_t i = 0; i < n; ++i) {
    const float x0 = x[i], eps = 1e-2f;
    x[i] = x0 + eps;
    const double up = loss(), xu = x[i];
    x[i] = x0 - eps;
    const double dn = loss(), xd = x[i];
    x[i] = x0;
    EXPECT_NEAR(dx[i], (up - dn) / (xu - xd), 1e-4 + 1e-3 * std::fabs(dx[i])) << "at " << i;
    zeros += dx[i] == 0.f;
  }
  EXPECT_GT(zeros, 0u);  // some elements were dropped, so the mask was exercised
  EXPECT_LT(zeros, n);
}

// The CPU/CUDA contract: element i is kept iff philox::uniform(seed, offset + i) >= p, bit for bit,
// whatever vector block, tail or thread i falls in. Offsets start on and off a draw's first word
// and cross the 2^32 boundary of the counter's low word (element 2^34), and the p values include
// ones that sit exactly on a 2^-24 step of the uniform.
TEST(Dropout, CpuMatchesScalarPhiloxTest) {
  const uint64_t seed = 0x0123456789abcdefull;
  auto x = random_vector(70001, 12);
  x[5] = std::numeric_limits<float>::infinity(), x[6] = std::nanf("");
  for (size_t n : {size_t(1), size_t(7), size_t(8), size_t(13), size_t(129), size_t(4097), size_t(70001)}) {
    for (uint64_t offset :
         {uint64_t(0), uint64_t(3), uint64_t(6), (uint64_t(1) << 34) - 203, (uint64_t(7) << 32) + 1}) {
      for (float p : {0.3f, 0.5f, 1.f / 3, 0.999f, 1.f}) {
        SCOPED_TRACE("n=" + std::to_string(n) + " offset=" + std::to_string(offset) + " p=" + std::to_string(p));
        const float scale = 1.0f / (1.0f - p);
        std::vector<float> want(n), y(n), dx(n);
        for (size_t i = 0; i < n; ++i) want[i] = philox::uniform(seed, offset + i) >= p ? x[i] * scale : 0.f;
        cpu::dropout_forward(x.data(), y.data(), n, p, seed, offset);
        cpu::dropout_backward(x.data(), dx.data(), n, p, seed, offset);
        ASSERT_EQ(0, std::memcmp(y.data(), want.data(), n * sizeof(float)));
        ASSERT_EQ(0, std::memcmp(dx.data(), want.data(), n * sizeof(float)));
      }
    }
  }
}

TEST(Dropout, CudaMatchesCpuBitwise) {
  REQUIRE_CUDA();
  Context gpu(Device::CUDA);
  const size_t n = 1000003;
  const uint64_t seed = 0xfedcba9876543210ull, offset = (uint64_t(3) << 32) + 17;
  auto x = random_vector(n, 8);
  // The kernel's float4 path: an offset on a draw's first word, 16-byte aligned pointers, and
  // the scalar one for a head and tail (offset + 17) or pointers off by one float.
  for (uint64_t at : {uint64_t(3) << 32, offset})
    for (size_t shift : {size_t(0), size_t(1)}) {
      const size_t m = n - shift;
      std::vector<float> want(m);
      cpu::dropout_forward(x.data() + shift, want.data(), m, 0.3f, seed, at);
      auto dX = test::to_device(gpu, x), dY = test::to_device(gpu, std::vector<float>(n));
      dropout_forward(gpu.exec(), dX.data() + shift, dY.data() + shift, m, 0.3f, seed, at);
      const auto got = test::to_host(gpu, dY);
      EXPECT_EQ(0, std::memcmp(got.data() + shift, want.data(), m * sizeof(float)))
          << "offset % 4 = " << at % 4 << ", shift " << shift;
    }
  for (float p : {0.f, 0.1f, 0.5f}) {
    std::vector<float> y(n), dx(n);
    cpu::dropout_forward(x.data(), y.data(), n, p, seed, offset);
    cpu::dropout_backward(x.data(), dx.data(), n, p, seed, offset);
    auto dX = test::to_device(gpu, x), dY = test::to_device(gpu, std::vector<float>(n)),
         dDX = test::to_device(gpu, std::vector<float>(n));
    dropout_forward(gpu.exec(), dX.data(), dY.data(), n, p, seed, offset);
    dropout_backward(gpu.exec(), dX.data(), dDX.data(), n, p, seed, offset);
    auto gy = test::to_host(gpu, dY), gdx = test::to_host(gpu, dDX);
    EXPECT_EQ(0, std::memcmp(gy.data(), y.data(), n * sizeof(float))) << "p = " << p;
    EXPECT_EQ(0, std::memcmp(gdx.data(), dx.data(), n * sizeof(float))) << "p = " << p;
    dropout_forward(gpu.exec(), dX.data(), dX.data(), n, p, seed, offset);  // in place
    auto gin = test::to_host(gpu, dX);
    EXPECT_EQ(0, std::memcmp(gin.data(), y.data(), n * sizeof(float))) << "p = " << p;
  }
  // The offset read from a word in device memory (captured graphs) instead of the argument.
  {
    std::vector<float> y(n);
    cpu::dropout_forward(x.data(), y.data(), n, 0.3f, seed, offset);
    auto dX = test::to_device(gpu, x), dY = test::to_device(gpu, std::vector<float>(n));
    PoolBuffer<uint64_t> word(gpu.pool(), 1, gpu.exec().stream);
    gpu.upload(word.data(), &offset, sizeof(offset));
    dropout_forward(gpu.exec(), dX.data(), dY.data(), n, 0.3f, seed, offset + 1, word.data());
    EXPECT_EQ(0, std::memcmp(test::to_host(gpu, dY).data(), y.data(), n * sizeof(float)));
    dropout_backward(gpu.exec(), dX.data(), dY.data(), n, 0.3f, seed, 0, word.data());
    EXPECT_EQ(0, std::memcmp(test::to_host(gpu, dY).data(), y.data(), n * sizeof(float)));
  }
  // A single element and an odd tail at a nonzero offset.
  for (size_t m : {size_t(1), size_t(33)}) {
    std::vector<float> xs(x.begin(), x.begin() + m), ys(m);
    cpu::dropout_forward(xs.data(), ys.data(), m, 0.5f, 3, 12345);
    auto dX = test::to_device(gpu, xs), dY = test::to_device(gpu, std::vector<float>(m));
    dropout_forward(gpu.exec(), dX.data(), dY.data(), m, 0.5f, 3, 12345);
    EXPECT_EQ(test::to_host(gpu, dY), ys);
  }
}

}  // namespace
}  // namespace caption
