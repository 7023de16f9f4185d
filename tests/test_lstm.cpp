#include "kernels/lstm.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/test_util.h"

namespace caption {
namespace {

using test::all_close;
using test::random_vector;

// Inputs of one LSTM case, host side. Weights span +-0.5 so that gates leave the linear region.
struct Case {
  LstmShape s;
  std::vector<float> x, w_ih, w_hh, b_ih, b_hh;
  LstmWeights weights() const { return {w_ih.data(), w_hh.data(), b_ih.data(), b_hh.data()}; }
};

Case make_case(LstmShape s, uint32_t seed) {
  const size_t G = 4 * size_t(s.H);
  return {s,
          random_vector(size_t(s.B) * s.T * s.I, seed),
          random_vector(G * s.I, seed + 1, -0.5f, 0.5f),
          random_vector(G * s.H, seed + 2, -0.5f, 0.5f),
          random_vector(G, seed + 3, -0.5f, 0.5f),
          random_vector(G, seed + 4, -0.5f, 0.5f)};
}

struct Forward {
  std::vector<float> h, c, gates;
};
struct Backward {
  std::vector<float> dx, w_ih, w_hh, b_ih, b_hh;
};

Forward cpu_forward(const Case& k) {
  const size_t n = size_t(k.s.B) * k.s.T * k.s.H;
  Forward f{std::vector<float>(n), std::vector<float>(n), std::vector<float>(4 * n)};
  cpu::lstm_forward(k.s, k.x.data(), k.weights(), {f.h.data(), f.c.data(), f.gates.data()});
  return f;
}

// Gradient buffers start as garbage: the op must overwrite them, not accumulate.
Backward garbage_grads(const LstmShape& s) {
  const size_t G = 4 * size_t(s.H);
  return {std::vector<float>(size_t(s.B) * s.T * s.I, 7.f), std::vector<float>(G * s.I, 7.f),
          std::vector<float>(G * s.H, 7.f), std::vector<float>(G, 7.f), std::vector<float>(G, 7.f)};
}

Backward cpu_backward(const Case& k, Forward f, std::vector<float> dh) {
  Backward g = garbage_grads(k.s);
  cpu::lstm_backward(k.s, k.x.data(), k.weights(), {f.h.data(), f.c.data(), f.gates.data()}, dh.data(),
                     g.dx.data(), {g.w_ih.data(), g.w_hh.data(), g.b_ih.data(), g.b_hh.data()});
  return g;
}

// The textbook recurrence in double, one scalar at a time: the oracle for the CPU forward.
Forward naive_forward(const Case& k) {
  const int B = k.s.B, T = k.s.T, I = k.s.I, H = k.s.H;
  Forward f{std::vector<float>(size_t(B) * T * H), std::vector<float>(size_t(B) * T * H),
            std::vector<float>(size_t(B) * T * 4 * H)};
  auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
  for (int b = 0; b < B; ++b) {
    std::vector<double> h(H, 0.0), c(H, 0.0), pre(4 * H);
    for (int t = 0; t < T; ++t) {
      const float* xt = &k.x[(size_t(b) * T + t) * I];
      for (int r = 0; r < 4 * H; ++r) {
        double v = double(k.b_ih[r]) + k.b_hh[r];
        for (int i = 0; i < I; ++i) v += double(k.w_ih[size_t(r) * I + i]) * xt[i];
        for (int j = 0; j < H; ++j) v += double(k.w_hh[size_t(r) * H + j]) * h[j];
        pre[r] = v;
      }
      const size_t row = size_t(b) * T + t;
      for (int j = 0; j < H; ++j) {
        double gi = sig(pre[j]), gf = sig(pre[H + j]), gg = std::tanh(pre[2 * H + j]),
               go = sig(pre[3 * H + j]);
        c[j] = gf * c[j] + gi * gg;
        h[j] = go * std::tanh(c[j]);
        f.gates[row * 4 * H + j] = float(gi);
        f.gates[row * 4 * H + H + j] = float(gf);
        f.gates[row * 4 * H + 2 * H + j] = float(gg);
        f.gates[row * 4 * H + 3 * H + j] = float(go);
        f.c[row * H + j] = float(c[j]);
        f.h[row * H + j] = float(h[j]);
      }
    }
  }
  return f;
}

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float e : v) m = std::max(m, double(std::fabs(e)));
  return m;
}

// For sums over many rows: relative tolerance per element plus an absolute one scaled to the data.
::testing::AssertionResult close_scaled(const std::vector<float>& a, const std::vector<float>& ref,
                                        float rtol) {
  return all_close(a, ref, rtol, float(rtol * std::max(1e-3, max_abs(ref))));
}

TEST(LstmCpu, ForwardMatchesNaive) {
  for (LstmShape s : {LstmShape{3, 5, 7, 9}, LstmShape{1, 1, 4, 3}, LstmShape{2, 6, 3, 33}}) {
    SCOPED_TRACE(::testing::Message() << "B=" << s.B << " T=" << s.T << " I=" << s.I << " H=" << s.H);
    Case k = make_case(s, 10);
    Forward got = cpu_forward(k), ref = naive_forward(k);
    EXPECT_TRUE(all_close(got.gates, ref.gates, 1e-5f, 1e-6f));
    EXPECT_TRUE(all_close(got.c, ref.c, 1e-5f, 1e-6f));
    EXPECT_TRUE(all_close(got.h, ref.h, 1e-5f, 1e-6f));
  }
}

// Saturated and non-finite pre-activations: the vectorised sigmoid/tanh clamp their argument,
// so large inputs give exact 0/1 limits, and NaN must still come through as NaN.
TEST(LstmCpu, ForwardSaturatesAndPropagatesNan) {
  Case k = make_case({1, 1, 1, 2}, 20);
  std::fill(k.w_ih.begin(), k.w_ih.end(), 0.f);
  std::fill(k.b_hh.begin(), k.b_hh.end(), 0.f);
  // Unit 0: i, f, g, o pre-activations +200, -200, +200, +200; unit 1: all NaN.
  k.b_ih = {200.f, NAN, -200.f, NAN, 200.f, NAN, 200.f, NAN};
  Forward f = cpu_forward(k);
  EXPECT_EQ(f.gates[0], 1.f);
  EXPECT_GE(f.gates[2], 0.f);
  EXPECT_LT(f.gates[2], 1e-30f);
  EXPECT_EQ(f.gates[4], 1.f);
  EXPECT_EQ(f.gates[6], 1.f);
  EXPECT_NEAR(f.c[0], 1.f, 1e-7f);
  EXPECT_NEAR(f.h[0], std::tanh(1.f), 1e-6f);
  EXPECT_TRUE(std::isnan(f.h[1]));
  EXPECT_TRUE(std::isnan(f.c[1]));
}

// Loss = sum(h * R) accumulated in double; central differences on every input and parameter.
TEST(LstmCpu, BackwardMatchesFiniteDifferences) {
  const LstmShape s{2, 4, 3, 5};
  Case k = make_case(s, 30);
  const std::vector<float> R = random_vector(size_t(s.B) * s.T * s.H, 35);
  auto loss = [&](const Case& kk) {
    Forward f = cpu_forward(kk);
    double l = 0;
    for (size_t i = 0; i < f.h.size(); ++i) l += double(f.h[i]) * R[i];
    return l;
  };
  Backward g = cpu_backward(k, cpu_forward(k), R);
  const float eps = 1e-3f;
  auto check = [&](std::vector<float> Case::*param, const std::vector<float>& grad, const char* name) {
    SCOPED_TRACE(name);
    std::vector<float> fd(grad.size());
    for (size_t i = 0; i < fd.size(); ++i) {
      Case kk = k;
      (kk.*param)[i] = (k.*param)[i] + eps;
      double up = loss(kk);
      (kk.*param)[i] = (k.*param)[i] - eps;
      double down = loss(kk);
      fd[i] = float((up - down) / (2 * double(eps)));
    }
    EXPECT_TRUE(all_close(grad, fd, 2e-3f, 3e-4f));
  };
  check(&Case::x, g.dx, "dx");
  check(&Case::w_ih, g.w_ih, "dW_ih");
  check(&Case::w_hh, g.w_hh, "dW_hh");
  check(&Case::b_ih, g.b_ih, "db_ih");
  check(&Case::b_hh, g.b_hh, "db_hh");
}

// dx = null skips only the input gradient; the weight gradients are unchanged.
TEST(LstmCpu, BackwardWithoutDx) {
  const LstmShape s{3, 5, 7, 9};
  Case k = make_case(s, 40);
  Forward f = cpu_forward(k);
  const std::vector<float> dh = random_vector(size_t(s.B) * s.T * s.H, 41);
  Backward full = cpu_backward(k, f, dh);
  Backward g = garbage_grads(s);
  std::vector<float> dh_copy = dh;
  cpu::lstm_backward(s, k.x.data(), k.weights(), {f.h.data(), f.c.data(), f.gates.data()}, dh_copy.data(),
                     nullptr, {g.w_ih.data(), g.w_hh.data(), g.b_ih.data(), g.b_hh.data()});
  EXPECT_EQ(g.w_ih, full.w_ih);
  EXPECT_EQ(g.w_hh, full.w_hh);
  EXPECT_EQ(g.b_ih, full.b_ih);
  EXPECT_EQ(g.b_hh, full.b_hh);
}

// Runs lstm_step T times from zero state on x[:, t] and compares with the sequence forward.
template <class StepFn>
void expect_steps_match_forward(const Case& k, const Forward& ref, float rtol, float atol, StepFn step) {
  const int B = k.s.B, T = k.s.T, I = k.s.I, H = k.s.H;
  std::vector<float> h(size_t(B) * H, 0.f), c(size_t(B) * H, 0.f), gates(size_t(B) * 4 * H),
      xt(size_t(B) * I);
  for (int t = 0; t < T; ++t) {
    SCOPED_TRACE(::testing::Message() << "t=" << t);
    for (int b = 0; b < B; ++b) std::copy_n(&k.x[(size_t(b) * T + t) * I], I, &xt[size_t(b) * I]);
    step(xt, h, c, gates);
    std::vector<float> ref_h(size_t(B) * H), ref_c(size_t(B) * H), ref_g(size_t(B) * 4 * H);
    for (int b = 0; b < B; ++b) {
      const size_t row = size_t(b) * T + t;
      std::copy_n(&ref.h[row * H], H, &ref_h[size_t(b) * H]);
      std::copy_n(&ref.c[row * H], H, &ref_c[size_t(b) * H]);
      std::copy_n(&ref.gates[row * 4 * H], 4 * H, &ref_g[size_t(b) * 4 * H]);
    }
    EXPECT_TRUE(all_close(gates, ref_g, rtol, atol));
    EXPECT_TRUE(all_close(c, ref_c, rtol, atol));
    EXPECT_TRUE(all_close(h, ref_h, rtol, atol));
  }
}

TEST(LstmCpu, StepRepeatedMatchesForward) {
  Case k = make_case({3, 5, 7, 9}, 50);
  expect_steps_match_forward(k, cpu_forward(k), 1e-5f, 1e-6f,
                             [&](const std::vector<float>& x, std::vector<float>& h, std::vector<float>& c,
                                 std::vector<float>& gates) {
                               cpu::lstm_step(k.s.B, k.s.I, k.s.H, x.data(), k.weights(), h.data(), c.data(),
                                              gates.data());
                             });
}

// PyTorch nn.LSTM, computed in double by tests/golden/make_lstm_golden.py.
TEST(LstmCpu, MatchesPytorchGolden) {
  std::ifstream in(CAPTION_TEST_DATA "/golden/lstm_small.json");
  ASSERT_TRUE(in) << "missing " CAPTION_TEST_DATA "/golden/lstm_small.json";
  const nlohmann::json j = nlohmann::json::parse(in);
  auto vec = [&](const char* key) { return j.at(key).get<std::vector<float>>(); };
  const LstmShape s{j.at("B").get<int>(), j.at("T").get<int>(), j.at("I").get<int>(), j.at("H").get<int>()};
  const Case k{s, vec("x"), vec("w_ih"), vec("w_hh"), vec("b_ih"), vec("b_hh")};
  Forward f = cpu_forward(k);
  EXPECT_TRUE(all_close(f.h, vec("h"), 1e-5f, 1e-7f));
  std::vector<float> c_T(size_t(s.B) * s.H);
  for (int b = 0; b < s.B; ++b)
    std::copy_n(&f.c[(size_t(b) * s.T + s.T - 1) * s.H], s.H, &c_T[size_t(b) * s.H]);
  EXPECT_TRUE(all_close(c_T, vec("c_T"), 1e-5f, 1e-7f));
  Backward g = cpu_backward(k, f, vec("R"));
  EXPECT_TRUE(all_close(g.dx, vec("dx"), 1e-5f, 1e-7f));
  EXPECT_TRUE(all_close(g.w_ih, vec("dw_ih"), 1e-5f, 1e-7f));
  EXPECT_TRUE(all_close(g.w_hh, vec("dw_hh"), 1e-5f, 1e-7f));
  EXPECT_TRUE(all_close(g.b_ih, vec("db_ih"), 1e-5f, 1e-7f));
  EXPECT_TRUE(all_close(g.b_hh, vec("db_hh"), 1e-5f, 1e-7f));
}

// Forward activations and every gradient against the CPU reference; the backward runs twice to
// check that it is deterministic and, after the first call, served from cached pool memory.
TEST(LstmCuda, ForwardBackwardMatchCpu) {
  REQUIRE_CUDA();
  Context gpu(Device::CUDA);
  for (LstmShape s : {LstmShape{1, 3, 50, 37}, LstmShape{5, 7, 50, 37}, LstmShape{64, 13, 50, 256}}) {
    SCOPED_TRACE(::testing::Message() << "B=" << s.B << " T=" << s.T << " I=" << s.I << " H=" << s.H);
    Case k = make_case(s, 60);
    const std::vector<float> dh = random_vector(size_t(s.B) * s.T * s.H, 65);
    Forward ref = cpu_forward(k);
    Backward ref_g = cpu_backward(k, ref, dh);

    auto x = test::to_device(gpu, k.x), w_ih = test::to_device(gpu, k.w_ih),
         w_hh = test::to_device(gpu, k.w_hh), b_ih = test::to_device(gpu, k.b_ih),
         b_hh = test::to_device(gpu, k.b_hh);
    const LstmWeights w{w_ih.data(), w_hh.data(), b_ih.data(), b_hh.data()};
    const size_t n = size_t(s.B) * s.T * s.H;
    PoolBuffer<float> h(gpu.pool(), n, gpu.exec().stream), c(gpu.pool(), n, gpu.exec().stream),
        gates(gpu.pool(), 4 * n, gpu.exec().stream);
    const LstmActivations act{h.data(), c.data(), gates.data()};
    lstm_forward(gpu.exec(), s, x.data(), w, act);
    EXPECT_TRUE(all_close(test::to_host(gpu, gates), ref.gates, 1e-4f, 1e-5f));
    EXPECT_TRUE(all_close(test::to_host(gpu, c), ref.c, 1e-4f, 1e-5f));
    EXPECT_TRUE(all_close(test::to_host(gpu, h), ref.h, 1e-4f, 1e-5f));

    Backward garbage = garbage_grads(s);
    std::vector<Backward> runs;
    size_t backing_allocs = 0;
    for (int run = 0; run < 2; ++run) {
      auto ddh = test::to_device(gpu, dh), dx = test::to_device(gpu, garbage.dx),
           gw_ih = test::to_device(gpu, garbage.w_ih), gw_hh = test::to_device(gpu, garbage.w_hh),
           gb_ih = test::to_device(gpu, garbage.b_ih), gb_hh = test::to_device(gpu, garbage.b_hh);
      if (run == 1) backing_allocs = gpu.pool().stats().backing_allocs;
      lstm_backward(gpu.exec(), s, x.data(), w, act, ddh.data(), dx.data(),
                    {gw_ih.data(), gw_hh.data(), gb_ih.data(), gb_hh.data()});
      if (run == 1) EXPECT_EQ(gpu.pool().stats().backing_allocs, backing_allocs);
      runs.push_back({test::to_host(gpu, dx), test::to_host(gpu, gw_ih), test::to_host(gpu, gw_hh),
                      test::to_host(gpu, gb_ih), test::to_host(gpu, gb_hh)});
    }
    const Backward& g = runs[0];
    EXPECT_TRUE(close_scaled(g.dx, ref_g.dx, 1e-4f));
    EXPECT_TRUE(close_scaled(g.w_ih, ref_g.w_ih, 1e-4f));
    EXPECT_TRUE(close_scaled(g.w_hh, ref_g.w_hh, 1e-4f));
    EXPECT_TRUE(close_scaled(g.b_ih, ref_g.b_ih, 1e-4f));
    EXPECT_TRUE(close_scaled(g.b_hh, ref_g.b_hh, 1e-4f));
    EXPECT_EQ(runs[1].dx, g.dx);
    EXPECT_EQ(runs[1].w_ih, g.w_ih);
    EXPECT_EQ(runs[1].w_hh, g.w_hh);
    EXPECT_EQ(runs[1].b_ih, g.b_ih);
    EXPECT_EQ(runs[1].b_hh, g.b_hh);
  }
}

#if CAPTION_HAS_CUDA
using StepImpl = void (*)(const Exec&, int, int, int, const float*, const LstmWeights&, float*, float*, float*);

// Beam-search sizes, from B = 1 (and hidden sizes that are no multiple of the fused kernel's 8
// units): each CUDA step implementation, and lstm_step's pick between them, against the CPU step
// from a random state, and repeated steps against the CPU sequence forward.
TEST(LstmCuda, StepMatchesCpu) {
  REQUIRE_CUDA();
  Context gpu(Device::CUDA);
  const std::pair<const char*, StepImpl> impls[] = {
      {"lstm_step", cuda::lstm_step}, {"gemm", cuda::lstm_step_gemm}, {"fused", cuda::lstm_step_fused}};
  for (LstmShape s : {LstmShape{1, 3, 50, 37}, LstmShape{7, 3, 50, 37}, LstmShape{64, 3, 50, 256},
                      LstmShape{13, 2, 3, 9}, LstmShape{130, 2, 50, 256}}) {
    Case k = make_case(s, 70);
    auto w_ih = test::to_device(gpu, k.w_ih), w_hh = test::to_device(gpu, k.w_hh),
         b_ih = test::to_device(gpu, k.b_ih), b_hh = test::to_device(gpu, k.b_hh);
    const LstmWeights w{w_ih.data(), w_hh.data(), b_ih.data(), b_hh.data()};
    PoolBuffer<float> gates(gpu.pool(), size_t(s.B) * 4 * s.H, gpu.exec().stream);
    for (auto [name, impl] : impls) {
      SCOPED_TRACE(::testing::Message() << name << " B=" << s.B << " I=" << s.I << " H=" << s.H);
      std::vector<float> x = random_vector(size_t(s.B) * s.I, 71), h = random_vector(size_t(s.B) * s.H, 72),
                         c = random_vector(size_t(s.B) * s.H, 73, -2.f, 2.f), ref_gates(size_t(s.B) * 4 * s.H);
      auto dx = test::to_device(gpu, x), dh = test::to_device(gpu, h), dc = test::to_device(gpu, c);
      cpu::lstm_step(s.B, s.I, s.H, x.data(), k.weights(), h.data(), c.data(), ref_gates.data());
      impl(gpu.exec(), s.B, s.I, s.H, dx.data(), w, dh.data(), dc.data(), gates.data());
      EXPECT_TRUE(all_close(test::to_host(gpu, gates), ref_gates, 1e-4f, 1e-5f));
      EXPECT_TRUE(all_close(test::to_host(gpu, dc), c, 1e-4f, 1e-5f));
      EXPECT_TRUE(all_close(test::to_host(gpu, dh), h, 1e-4f, 1e-5f));

      PoolBuffer<float> xt(gpu.pool(), size_t(s.B) * s.I, gpu.exec().stream),
          ht(gpu.pool(), size_t(s.B) * s.H, gpu.exec().stream),
          ct(gpu.pool(), size_t(s.B) * s.H, gpu.exec().stream);
      gpu.zero(ht.data(), sizeof(float) * ht.size());
      gpu.zero(ct.data(), sizeof(float) * ct.size());
      expect_steps_match_forward(k, cpu_forward(k), 1e-4f, 1e-5f,
                                 [&](const std::vector<float>& x_t, std::vector<float>& h_out,
                                     std::vector<float>& c_out, std::vector<float>& g_out) {
                                   gpu.upload(xt.data(), x_t.data(), sizeof(float) * x_t.size());
                                   impl(gpu.exec(), s.B, s.I, s.H, xt.data(), w, ht.data(), ct.data(),
                                        gates.data());
                                   gpu.download(h_out.data(), ht.data(), sizeof(float) * h_out.size());
                                   gpu.download(c_out.data(), ct.data(), sizeof(float) * c_out.size());
                                   gpu.download(g_out.data(), gates.data(), sizeof(float) * g_out.size());
                                 });
    }
  }
  EXPECT_TRUE(cuda::lstm_step_fusable(cuda::kLstmFusedStepMaxRows, 50, 256));
  EXPECT_FALSE(cuda::lstm_step_fusable(cuda::kLstmFusedStepMaxRows + 1, 50, 256));
}
#endif

}  // namespace
}  // namespace caption
