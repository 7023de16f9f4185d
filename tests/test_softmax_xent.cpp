#include "kernels/softmax_xent.h"

#include <cmath>

#include "tests/test_util.h"

namespace caption {
namespace {

using test::all_close;
using test::random_vector;

// Targets in [1, V) with the rows listed in pad set to 0.
std::vector<int32_t> random_targets(int N, int V, uint32_t seed, const std::vector<int>& pad = {}) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> dist(1, V - 1);
  std::vector<int32_t> t(N);
  for (auto& x : t) x = dist(rng);
  for (int n : pad) t[n] = 0;
  return t;
}

// Naive double-precision oracle for lse and loss.
void naive_forward(const std::vector<float>& logits, const std::vector<int32_t>& targets, int N, int V,
                   std::vector<float>& loss, std::vector<float>& lse) {
  loss.assign(N, 0.f), lse.assign(N, 0.f);
  for (int n = 0; n < N; ++n) {
    const float* x = logits.data() + size_t(n) * V;
    double mx = x[0], s = 0;
    for (int v = 0; v < V; ++v) mx = std::max(mx, double(x[v]));
    for (int v = 0; v < V; ++v) s += std::exp(double(x[v]) - mx);
    double l = mx + std::log(s);
    lse[n] = float(l);
    loss[n] = targets[n] == 0 ? 0.f : float(l - x[targets[n]]);
  }
}

TEST(SoftmaxXent, CpuForwardMatchesNaiveDouble) {
  const int N = 6, V = 37;
  auto logits = random_vector(N * V, 1, -4.f, 4.f);
  for (int v = 0; v < V; ++v) logits[2 * V + v] += 200.f;  // exp would overflow without max subtraction
  auto targets = random_targets(N, V, 2, {4});
  std::vector<float> loss(N), lse(N), ref_loss, ref_lse;
  cpu::softmax_xent_forward(logits.data(), targets.data(), N, V, loss.data(), lse.data());
  naive_forward(logits, targets, N, V, ref_loss, ref_lse);
  EXPECT_TRUE(all_close(lse, ref_lse, 1e-6f, 1e-6f));
  EXPECT_TRUE(all_close(loss, ref_loss, 1e-5f, 1e-6f));

  std::vector<float> lse_only(N);
  cpu::logsumexp_rows(logits.data(), N, V, lse_only.data());
  EXPECT_EQ(lse_only, lse);
}

TEST(SoftmaxXent, CpuBackwardMatchesFiniteDifferences) {
  const int N = 4, V = 11;
  auto logits = random_vector(N * V, 3, -2.f, 2.f);
  auto targets = random_targets(N, V, 4, {1});
  std::vector<float> loss(N), lse(N), dlogits(N * V);
  cpu::softmax_xent_forward(logits.data(), targets.data(), N, V, loss.data(), lse.data());
  cpu::softmax_xent_backward(logits.data(), targets.data(), lse.data(), N, V, 1.f, dlogits.data());

  // Central differences of sum(loss), each loss in double from the float forward.
  auto total = [&](const std::vector<float>& x) {
    std::vector<float> l(N), s(N);
    cpu::softmax_xent_forward(x.data(), targets.data(), N, V, l.data(), s.data());
    double sum = 0;
    for (float v : l) sum += v;
    return sum;
  };
  const float h = 1e-2f;
  std::vector<float> fd(N * V);
  for (int i = 0; i < N * V; ++i) {
    auto xp = logits, xm = logits;
    xp[i] += h, xm[i] -= h;
    fd[i] = float((total(xp) - total(xm)) / (double(xp[i]) - xm[i]));
  }
  EXPECT_TRUE(all_close(dlogits, fd, 1e-2f, 2e-4f));

  // scale multiplies the gradient (a power of two, so exactly).
  std::vector<float> half(N * V);
  cpu::softmax_xent_backward(logits.data(), targets.data(), lse.data(), N, V, 0.5f, half.data());
  for (int i = 0; i < N * V; ++i) ASSERT_EQ(half[i], 0.5f * dlogits[i]) << i;
}

TEST(SoftmaxXent, PaddingRowsContributeNothing) {
  const int N = 5, V = 19;
  auto logits = random_vector(N * V, 5, -3.f, 3.f);
  auto targets = random_targets(N, V, 6, {0, 3});
  std::vector<float> loss(N), lse(N), dlogits(N * V), ref_loss, ref_lse;
  cpu::softmax_xent_forward(logits.data(), targets.data(), N, V, loss.data(), lse.data());
  cpu::softmax_xent_backward(logits.data(), targets.data(), lse.data(), N, V, 1.f, dlogits.data());
  naive_forward(logits, targets, N, V, ref_loss, ref_lse);
  EXPECT_TRUE(all_close(lse, ref_lse, 1e-6f, 1e-6f));  // lse is written for padding rows too
  for (int n = 0; n < N; ++n) {
    bool pad = targets[n] == 0;
    EXPECT_EQ(loss[n] == 0.f, pad) << n;
    double row_sum = 0, row_abs = 0;
    for (int v = 0; v < V; ++v) row_sum += dlogits[n * V + v], row_abs += std::fabs(dlogits[n * V + v]);
    if (pad) EXPECT_EQ(row_abs, 0.0) << n;
    else EXPECT_GT(row_abs, 1.0) << n;  // |p - onehot| sums to 2(1 - p_target)
    EXPECT_NEAR(row_sum, 0.0, 1e-6) << n;  // softmax sums to one, minus the one-hot
  }
}

TEST(SoftmaxXent, InPlaceBackwardEqualsOutOfPlace) {
  const int N = 7, V = 53;
  auto logits = random_vector(N * V, 7, -5.f, 5.f);
  auto targets = random_targets(N, V, 8, {2});
  std::vector<float> loss(N), lse(N), out(N * V);
  cpu::softmax_xent_forward(logits.data(), targets.data(), N, V, loss.data(), lse.data());
  cpu::softmax_xent_backward(logits.data(), targets.data(), lse.data(), N, V, 0.3f, out.data());
  auto inplace = logits;
  cpu::softmax_xent_backward(inplace.data(), targets.data(), lse.data(), N, V, 0.3f, inplace.data());
  EXPECT_EQ(inplace, out);
}

TEST(SoftmaxXent, ScaleFromMemoryReplacesTheArgument) {
  Context ctx(Device::CPU);
  const int N = 5, V = 41;
  auto logits = random_vector(N * V, 9, -5.f, 5.f);
  auto targets = random_targets(N, V, 10, {3});
  std::vector<float> loss(N), lse(N), want(N * V), got(N * V);
  cpu::softmax_xent_forward(logits.data(), targets.data(), N, V, loss.data(), lse.data());
  cpu::softmax_xent_backward(logits.data(), targets.data(), lse.data(), N, V, 0.25f, want.data());
  PoolBuffer<float> word(ctx.pool(), 1);
  const float scale = 0.25f;
  ctx.upload(word.data(), &scale, sizeof(scale));
  softmax_xent_backward(ctx.exec(), logits.data(), targets.data(), lse.data(), N, V, 9.f, got.data(), word.data());
  EXPECT_EQ(got, want);
}

// CUDA vs CPU for forward, logsumexp_rows, and backward out of place (dlogits at an offset of
// one float from logits' alignment, the scalar path), and in place (the float4 path).
void check_cuda_matches_cpu(int N, int V, const std::vector<int32_t>& targets, uint32_t seed) {
  SCOPED_TRACE("N=" + std::to_string(N) + " V=" + std::to_string(V));
  Context gpu(Device::CUDA);
  auto logits = random_vector(size_t(N) * V, seed, -6.f, 6.f);
  const float scale = 1.f / 37;
  std::vector<float> loss(N), lse(N), dlogits(size_t(N) * V);
  cpu::softmax_xent_forward(logits.data(), targets.data(), N, V, loss.data(), lse.data());
  cpu::softmax_xent_backward(logits.data(), targets.data(), lse.data(), N, V, scale, dlogits.data());

  auto d_logits = test::to_device(gpu, logits);
  auto d_targets = test::to_device(gpu, targets);
  PoolBuffer<float> d_loss(gpu.pool(), N, gpu.exec().stream), d_lse(gpu.pool(), N, gpu.exec().stream),
      d_lse_only(gpu.pool(), N, gpu.exec().stream);
  softmax_xent_forward(gpu.exec(), d_logits.data(), d_targets.data(), N, V, d_loss.data(), d_lse.data());
  logsumexp_rows(gpu.exec(), d_logits.data(), N, V, d_lse_only.data());
  EXPECT_TRUE(all_close(test::to_host(gpu, d_lse), lse, 1e-6f, 1e-5f));
  EXPECT_TRUE(all_close(test::to_host(gpu, d_lse_only), lse, 1e-6f, 1e-5f));
  EXPECT_TRUE(all_close(test::to_host(gpu, d_loss), loss, 1e-5f, 1e-5f));

  // Backward from the CPU lse so that only the backward kernel is compared.
  auto d_cpu_lse = test::to_device(gpu, lse);
  PoolBuffer<float> d_out(gpu.pool(), size_t(N) * V + 1, gpu.exec().stream);
  softmax_xent_backward(gpu.exec(), d_logits.data(), d_targets.data(), d_cpu_lse.data(), N, V, scale,
                        d_out.data() + 1);
  std::vector<float> out(size_t(N) * V + 1);
  gpu.download(out.data(), d_out.data(), out.size() * sizeof(float));
  out.erase(out.begin());
  EXPECT_TRUE(all_close(out, dlogits, 1e-5f, 1e-8f));

  // The scale read from device memory (captured graphs) instead of the argument.
  PoolBuffer<float> d_scale(gpu.pool(), 1, gpu.exec().stream);
  gpu.upload(d_scale.data(), &scale, sizeof(scale));
  softmax_xent_backward(gpu.exec(), d_logits.data(), d_targets.data(), d_cpu_lse.data(), N, V, 5.f,
                        d_out.data() + 1, d_scale.data());
  out.resize(size_t(N) * V + 1);
  gpu.download(out.data(), d_out.data(), out.size() * sizeof(float));
  out.erase(out.begin());
  EXPECT_TRUE(all_close(out, dlogits, 1e-5f, 1e-8f));

  softmax_xent_backward(gpu.exec(), d_logits.data(), d_targets.data(), d_cpu_lse.data(), N, V, scale,
                        d_logits.data());
  EXPECT_TRUE(all_close(test::to_host(gpu, d_logits), dlogits, 1e-5f, 1e-8f));
}

TEST(SoftmaxXent, CudaMatchesCpu) {
  REQUIRE_CUDA();
  check_cuda_matches_cpu(1, 1661, random_targets(1, 1661, 10), 11);
  check_cuda_matches_cpu(1, 3, random_targets(1, 3, 12), 13);
  check_cuda_matches_cpu(37, 1003, random_targets(37, 1003, 14, {0, 5, 36}), 15);
  check_cuda_matches_cpu(640, 1661, random_targets(640, 1661, 16, {1, 2, 3, 100, 639}), 17);
  check_cuda_matches_cpu(37, 1003, std::vector<int32_t>(37, 0), 18);  // all padding
}

}  // namespace
}  // namespace caption
