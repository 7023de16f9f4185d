#include "kernels/pool.h"

#include <algorithm>
#include <array>
#include <limits>

#include "tests/test_util.h"

namespace caption {
namespace {

using test::all_close;
using test::random_vector;

// Window bounds clamped to the image up front (the kernels skip taps instead): an independent oracle.
std::vector<float> naive_maxpool(const PoolShape& s, const std::vector<float>& x) {
  const int P = s.P(), Q = s.Q();
  std::vector<float> y(size_t(s.N) * P * Q * s.C);
  for (int n = 0; n < s.N; ++n)
    for (int p = 0; p < P; ++p)
      for (int q = 0; q < Q; ++q)
        for (int c = 0; c < s.C; ++c) {
          const int h0 = std::max(0, p * s.stride - s.pad), h1 = std::min(s.H, p * s.stride - s.pad + s.k);
          const int w0 = std::max(0, q * s.stride - s.pad), w1 = std::min(s.W, q * s.stride - s.pad + s.k);
          float m = -std::numeric_limits<float>::infinity();
          for (int h = h0; h < h1; ++h)
            for (int w = w0; w < w1; ++w) m = std::max(m, x[((size_t(n) * s.H + h) * s.W + w) * s.C + c]);
          y[((size_t(n) * P + p) * Q + q) * s.C + c] = m;
        }
  return y;
}

const std::vector<PoolShape> kShapes = {
    {2, 7, 9, 5, 3, 2, 1},       // ResNet's 3x3/2 pad 1 on odd sizes
    {1, 112, 112, 64, 3, 2, 1},  // the real one, after conv1
    {1, 5, 4, 3, 2, 1, 0},
    {3, 6, 6, 1, 3, 3, 0},
};

// All-negative input: a zero-valued pad would win every border window.
TEST(Pool, MaxPoolPaddingNeverWins) {
  const PoolShape s{1, 4, 4, 1, 3, 2, 1};
  std::vector<float> x(16);
  for (int i = 0; i < 16; ++i) x[i] = -float(1 + i);  // x[h][w] = -(1 + 4h + w)
  std::vector<float> y(4);
  cpu::maxpool2d(s, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{-1, -2, -5, -6}));
}

TEST(Pool, MaxPoolCpuMatchesNaive) {
  uint32_t seed = 1;
  for (const PoolShape& s : kShapes) {
    const auto x = random_vector(size_t(s.N) * s.H * s.W * s.C, seed++);
    std::vector<float> y(size_t(s.N) * s.P() * s.Q() * s.C);
    cpu::maxpool2d(s, x.data(), y.data());
    EXPECT_EQ(y, naive_maxpool(s, x)) << "H=" << s.H << " k=" << s.k;
  }
}

TEST(Pool, GlobalAvgPoolCpu) {
  // Hand case: 1 image, 2x2 pixels, 2 channels.
  const std::vector<float> x = {1, 10, 2, 20, 3, 30, 6, 40};
  std::vector<float> y(2);
  cpu::global_avgpool(1, 2, 2, 2, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{3, 25}));
  // Random odd shape against a double-precision mean.
  const int N = 3, H = 7, W = 5, C = 9;
  const auto r = random_vector(size_t(N) * H * W * C, 5);
  std::vector<float> out(size_t(N) * C), ref(size_t(N) * C);
  cpu::global_avgpool(N, H, W, C, r.data(), out.data());
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) {
      double s = 0;
      for (int i = 0; i < H * W; ++i) s += r[(size_t(n) * H * W + i) * C + c];
      ref[size_t(n) * C + c] = float(s / (H * W));
    }
  EXPECT_TRUE(all_close(out, ref, 1e-6f, 1e-6f));
}

TEST(Pool, CudaMatchesCpuExactly) {
  REQUIRE_CUDA();
  Context gpu(Device::CUDA);
  uint32_t seed = 10;
  for (const PoolShape& s : kShapes) {
    const auto x = random_vector(size_t(s.N) * s.H * s.W * s.C, seed++);
    std::vector<float> ref(size_t(s.N) * s.P() * s.Q() * s.C);
    cpu::maxpool2d(s, x.data(), ref.data());
    auto dx = test::to_device(gpu, x);
    PoolBuffer<float> dy(gpu.pool(), ref.size(), gpu.exec().stream);
    maxpool2d(gpu.exec(), s, dx.data(), dy.data());
    EXPECT_EQ(test::to_host(gpu, dy), ref) << "maxpool H=" << s.H;
    PoolShape nchw = s;
    nchw.layout = Layout::NCHW;
    auto dxt = test::to_device(gpu, test::nhwc_to_nchw(x, s.N, s.H, s.W, s.C));
    maxpool2d(gpu.exec(), nchw, dxt.data(), dy.data());
    EXPECT_EQ(test::nchw_to_nhwc(test::to_host(gpu, dy), s.N, s.C, s.P(), s.Q()), ref) << "NCHW maxpool H=" << s.H;
    // bfloat16: the max of bfloat16 values is one of them, so the CPU's max of the widened values.
    const auto x16 = test::to_bf16(x);
    std::vector<float> ref16(ref.size());
    cpu::maxpool2d(s, test::from_bf16(x16).data(), ref16.data());
    PoolBuffer<uint16_t> dy16(gpu.pool(), ref.size(), gpu.exec().stream);
    auto dx16 = test::to_device(gpu, x16);
    maxpool2d(gpu.exec(), s, dx16.data(), dy16.data());
    EXPECT_EQ(test::from_bf16(test::to_host(gpu, dy16)), ref16) << "bfloat16 maxpool H=" << s.H;
    auto dx16t = test::to_device(gpu, test::nhwc_to_nchw(x16, s.N, s.H, s.W, s.C));
    maxpool2d(gpu.exec(), nchw, dx16t.data(), dy16.data());
    EXPECT_EQ(test::nchw_to_nhwc(test::from_bf16(test::to_host(gpu, dy16)), s.N, s.C, s.P(), s.Q()), ref16)
        << "bfloat16 NCHW maxpool H=" << s.H;
  }
  // Global average: same summation order on both backends, layouts and precisions, so equal bits. C = 2048 at 7x7 is ResNet's.
  for (auto [N, H, W, C] : std::vector<std::array<int, 4>>{{1, 7, 7, 2048}, {3, 5, 3, 1}, {2, 1, 1, 7}, {2, 9, 11, 33}}) {
    const auto x = random_vector(size_t(N) * H * W * C, seed++);
    std::vector<float> ref(size_t(N) * C);
    cpu::global_avgpool(N, H, W, C, x.data(), ref.data());
    auto dx = test::to_device(gpu, x);
    PoolBuffer<float> dy(gpu.pool(), ref.size(), gpu.exec().stream);
    global_avgpool(gpu.exec(), N, H, W, C, dx.data(), dy.data());
    EXPECT_EQ(test::to_host(gpu, dy), ref) << "avgpool C=" << C;
    auto dxt = test::to_device(gpu, test::nhwc_to_nchw(x, N, H, W, C));
    global_avgpool(gpu.exec(), N, H, W, C, dxt.data(), dy.data(), Layout::NCHW);
    EXPECT_EQ(test::to_host(gpu, dy), ref) << "NCHW avgpool C=" << C;
    // bfloat16 in, summed in FP32 in the same order: the CPU's average of the widened values.
    const auto x16 = test::to_bf16(x);
    std::vector<float> ref16(ref.size());
    cpu::global_avgpool(N, H, W, C, test::from_bf16(x16).data(), ref16.data());
    for (Layout layout : {Layout::NHWC, Layout::NCHW}) {
      auto dx16 = test::to_device(gpu, layout == Layout::NHWC ? x16 : test::nhwc_to_nchw(x16, N, H, W, C));
      global_avgpool(gpu.exec(), N, H, W, C, dx16.data(), dy.data(), layout);
      EXPECT_EQ(test::to_host(gpu, dy), ref16) << "bfloat16 " << layout_name(layout) << " avgpool C=" << C;
    }
  }
}

}  // namespace
}  // namespace caption
