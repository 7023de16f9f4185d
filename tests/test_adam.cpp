#include "kernels/adam.h"

#include <array>
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
  EXPECT_TRUE(all_close(m_gpu, m, 1e-5f, 1e-9f));
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
