#include "kernels/adam.h"

#include <array>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/test_util.h"

namespace caption {
namespace {

using test::all_close;
using test::random_vector;

// tests/golden/make_adam_golden.py: torch.optim.Adam on two tensors flattened into one buffer,
// three steps, without and with weight decay.
TEST(Adam, MatchesTorchGolden) {
  std::ifstream f(std::string(CAPTION_TEST_DATA) + "/golden/adam_small.json");
  ASSERT_TRUE(f) << "missing golden file";
  auto golden = nlohmann::json::parse(f);
  ASSERT_EQ(golden["cases"].size(), 2u);
  for (const auto& c : golden["cases"]) {
    AdamConfig cfg;
    cfg.lr = c["lr"], cfg.beta1 = c["beta1"], cfg.beta2 = c["beta2"], cfg.eps = c["eps"];
    cfg.weight_decay = c["weight_decay"];
    SCOPED_TRACE("weight_decay=" + std::to_string(cfg.weight_decay));
    auto params = c["params0"].get<std::vector<float>>();
    size_t n = params.size();
    std::vector<float> m(n, 0.f), v(n, 0.f);
    long step = 0;
    for (const auto& g : c["grads"]) {
      auto grads = g.get<std::vector<float>>();
      ASSERT_EQ(grads.size(), n);
      cpu::adam_step(params.data(), grads.data(), m.data(), v.data(), n, cfg, ++step);
    }
    ASSERT_EQ(step, 3);
    EXPECT_TRUE(all_close(params, c["params"].get<std::vector<float>>(), 1e-6f, 0.f));
    EXPECT_TRUE(all_close(m, c["exp_avg"].get<std::vector<float>>(), 1e-6f, 0.f));
    EXPECT_TRUE(all_close(v, c["exp_avg_sq"].get<std::vector<float>>(), 1e-6f, 0.f));
  }
}

// The first step from zero moments moves every parameter by lr * g / (|g| + eps) (bias
// corrections cancel), about lr against the gradient's sign: independent of the golden file.
TEST(Adam, FirstStepMovesByLearningRate) {
  AdamConfig cfg;
  cfg.lr = 0.01f;
  auto params = random_vector(9, 1), grads = random_vector(9, 2, 0.1f, 2.f);
  for (int i = 0; i < 9; i += 2) grads[i] = -grads[i];
  auto before = params;
  std::vector<float> m(9, 0.f), v(9, 0.f);
  cpu::adam_step(params.data(), grads.data(), m.data(), v.data(), 9, cfg, 1);
  for (int i = 0; i < 9; ++i) EXPECT_NEAR(params[i] - before[i], grads[i] > 0 ? -0.01f : 0.01f, 1e-6f) << i;
}

// The vectorised CPU update (4-lane body, scalar tail, chunks split between threads) equals
// torch's formula applied element by element in float, bit for bit, with and without decay.
TEST(Adam, CpuMatchesScalarFormulaBitwise) {
  const size_t n = 70001;  // above the parallel threshold, odd tail
  for (float wd : {0.f, 0.01f}) {
    AdamConfig cfg;
    cfg.lr = 3e-3f, cfg.weight_decay = wd;
    auto p = random_vector(n, 1), want_p = p;
    std::vector<float> m(n, 0.f), v(n, 0.f), want_m = m, want_v = v;
    for (long step = 1; step <= 3; ++step) {
      auto g = random_vector(n, uint32_t(step), -0.5f, 0.5f);
      g[7] = 0.f, g[8] = -0.f;
      cpu::adam_step(p.data(), g.data(), m.data(), v.data(), n, cfg, step);
      const float step_size = float(cfg.lr / (1.0 - std::pow(double(cfg.beta1), double(step))));
      const float bc2_sqrt = float(std::sqrt(1.0 - std::pow(double(cfg.beta2), double(step))));
      const float omb1 = float(1.0 - cfg.beta1), omb2 = float(1.0 - cfg.beta2);
      for (size_t i = 0; i < n; ++i) {
        float gi = g[i];
        if (wd != 0.f) gi += wd * want_p[i];
        want_m[i] = cfg.beta1 * want_m[i] + omb1 * gi;
        want_v[i] = cfg.beta2 * want_v[i] + omb2 * gi * gi;
        want_p[i] -= step_size * (want_m[i] / (std::sqrt(want_v[i]) / bc2_sqrt + cfg.eps));
      }
    }
    EXPECT_EQ(0, std::memcmp(p.data(), want_p.data(), n * sizeof(float))) << "wd " << wd;
    EXPECT_EQ(0, std::memcmp(m.data(), want_m.data(), n * sizeof(float))) << "wd " << wd;
    EXPECT_EQ(0, std::memcmp(v.data(), want_v.data(), n * sizeof(float))) << "wd " << wd;
  }
}

// CUDA vs CPU over three steps. offset shifts each of the four buffers by a number of floats:
// equal shifts take the float4 path with a scalar head, unequal ones the all-scalar path.
void check_cuda_matches_cpu(size_t n, std::array<int, 4> offset) {
  SCOPED_TRACE("n=" + std::to_string(n) + " offsets " + std::to_string(offset[0]) + std::to_string(offset[1]) +
               std::to_string(offset[2]) + std::to_string(offset[3]));
  Context gpu(Device::CUDA);
  AdamConfig cfg;
  cfg.weight_decay = 0.01f;
  auto params = random_vector(n, 1);
  std::vector<float> m(n, 0.f), v(n, 0.f);
  std::vector<PoolBuffer<float>> bufs;
  std::array<float*, 4> d;  // params, grads, m, v
  for (int b = 0; b < 4; ++b) {
    bufs.emplace_back(gpu.pool(), n + offset[b], gpu.exec().stream);
    d[b] = bufs.back().data() + offset[b];
  }
  gpu.upload(d[0], params.data(), n * sizeof(float));
  gpu.zero(d[2], n * sizeof(float));
  gpu.zero(d[3], n * sizeof(float));
  for (long step = 1; step <= 3; ++step) {
    auto grads = random_vector(n, uint32_t(10 + step), -float(step), float(step));
    cpu::adam_step(params.data(), grads.data(), m.data(), v.data(), n, cfg, step);
    gpu.upload(d[1], grads.data(), n * sizeof(float));
    adam_step(gpu.exec(), d[0], d[1], d[2], d[3], n, cfg, step);
  }
  std::vector<float> p_gpu(n), m_gpu(n), v_gpu(n);
  gpu.download(p_gpu.data(), d[0], n * sizeof(float));
  gpu.download(m_gpu.data(), d[2], n * sizeof(float));
  gpu.download(v_gpu.data(), d[3], n * sizeof(float));
  EXPECT_TRUE(all_close(p_gpu, params, 1e-6f, 1e-8f));
  // m = b1*m + (1-b1)*g can cancel to almost nothing, and the GPU fuses the multiply-add while
  // the CPU reference rounds twice: each step may differ by an ulp of the terms (|g| <= 3 here,
  // so about 6e-8), which an absolute 1e-6 bounds over three steps.
  EXPECT_TRUE(all_close(m_gpu, m, 1e-5f, 1e-6f));
  EXPECT_TRUE(all_close(v_gpu, v, 1e-5f, 1e-12f));
}

TEST(Adam, CudaMatchesCpu) {
  REQUIRE_CUDA();
  for (size_t n : {size_t(1), size_t(1003), (size_t(1) << 20) + 3}) {
    check_cuda_matches_cpu(n, {0, 0, 0, 0});
    check_cuda_matches_cpu(n, {1, 1, 1, 1});
    check_cuda_matches_cpu(n, {0, 1, 2, 3});
  }
}

}  // namespace
}  // namespace caption
