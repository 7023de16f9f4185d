#include "kernels/grad_norm.h"

#include <cmath>

#include "tests/test_util.h"

namespace caption {
namespace {

using test::random_vector;

double naive_norm(const std::vector<float>& x) {
  double s = 0;
  for (float v : x) s += double(v) * v;
  return std::sqrt(s);
}

TEST(GradNorm, CpuMatchesDoubleNaive) {
  for (size_t n : {size_t(1), size_t(1003), size_t(100003)}) {
    auto x = random_vector(n, uint32_t(n), -3.f, 3.f);
    EXPECT_NEAR(cpu::global_norm(x.data(), n), naive_norm(x), 1e-6 * naive_norm(x)) << n;
  }
  EXPECT_EQ(cpu::global_norm(nullptr, 0), 0.f);
}

TEST(GradNorm, ClipSemantics) {
  Context cpu_ctx(Device::CPU);
  const size_t n = 1001;
  auto g = random_vector(n, 1);
  const float norm = float(naive_norm(g));

  // Above the maximum: scaled by max_norm / (norm + 1e-6), the norm before clipping returned.
  auto clipped = g;
  EXPECT_NEAR(clip_grad_norm(cpu_ctx.exec(), clipped.data(), n, 1.5f), norm, 1e-5f * norm);
  const float coef = 1.5f / (norm + 1e-6f);
  ASSERT_LT(coef, 1.f);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(clipped[i], g[i] * coef) << i;
  EXPECT_NEAR(naive_norm(clipped), 1.5, 1e-5);

  // At or below the maximum, or clipping off (max_norm <= 0): untouched.
  for (float max_norm : {2 * norm, 0.f, -1.f}) {
    auto same = g;
    EXPECT_NEAR(clip_grad_norm(cpu_ctx.exec(), same.data(), n, max_norm), norm, 1e-5f * norm);
    EXPECT_EQ(same, g) << max_norm;
  }

  // All-zero gradients: norm 0, and the 1e-6 keeps the coefficient finite.
  std::vector<float> zeros(n, 0.f);
  EXPECT_EQ(clip_grad_norm(cpu_ctx.exec(), zeros.data(), n, 1.f), 0.f);
  EXPECT_EQ(zeros, std::vector<float>(n, 0.f));
}

TEST(GradNorm, CudaMatchesCpu) {
  REQUIRE_CUDA();
  Context gpu(Device::CUDA);
  for (size_t n : {size_t(1), size_t(1003), (size_t(1) << 20) + 3}) {
    for (size_t offset : {size_t(0), size_t(1)}) {  // offset 1: scalar head before the float4 body
      SCOPED_TRACE("n=" + std::to_string(n) + " offset=" + std::to_string(offset));
      auto x = random_vector(n + offset, uint32_t(n), -2.f, 2.f);
      auto d = test::to_device(gpu, x);
      std::vector<float> xs(x.begin() + offset, x.end());
      float ref = cpu::global_norm(xs.data(), n);
      EXPECT_NEAR(global_norm(gpu.exec(), d.data() + offset, n), ref, 1e-5f * ref);

      cpu::scale(xs.data(), n, 0.37f);
      scale(gpu.exec(), d.data() + offset, n, 0.37f);
      auto back = test::to_host(gpu, d);
      if (offset) EXPECT_EQ(back[0], x[0]) << "wrote before the range";
      EXPECT_EQ(std::vector<float>(back.begin() + offset, back.end()), xs);
    }
  }
}

TEST(GradNorm, CudaIsBitwiseDeterministic) {
  REQUIRE_CUDA();
  Context gpu(Device::CUDA);
  const size_t n = (size_t(1) << 22) + 5;
  auto d = test::to_device(gpu, random_vector(n, 3, -1.f, 1.f));
  float first = global_norm(gpu.exec(), d.data(), n);
  for (int run = 0; run < 5; ++run) EXPECT_EQ(global_norm(gpu.exec(), d.data(), n), first) << run;

  // clip_grad_norm on CUDA: the norm after clipping is max_norm.
  EXPECT_EQ(clip_grad_norm(gpu.exec(), d.data(), n, 1.f), first);
  EXPECT_NEAR(global_norm(gpu.exec(), d.data(), n), 1.f, 1e-5f);
}

}  // namespace
}  // namespace caption
