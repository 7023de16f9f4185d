// The CPU kernels split their loops between threads (kernels/parallel.h); their results must
// not depend on how many there are. Each op runs at sizes above its parallel threshold with
// one thread and with three, and the outputs must agree bit for bit. parallel_for itself is
// checked to run every item exactly once, also when nested.
#include <atomic>
#include <cstring>
#include <functional>

#include "kernels/adam.h"
#include "kernels/dropout.h"
#include "kernels/gemm.h"
#include "kernels/grad_norm.h"
#include "kernels/lstm.h"
#include "kernels/parallel.h"
#include "kernels/softmax_xent.h"
#include "tests/test_util.h"

namespace caption {
namespace {

using test::random_vector;

// Runs f with 1 and then 3 threads and returns both results.
template <class T>
std::pair<T, T> at_1_and_3_threads(const std::function<T()>& f) {
  cpu::set_num_threads(1);
  T one = f();
  cpu::set_num_threads(3);
  T three = f();
  cpu::set_num_threads(0);  // back to the default
  return {one, three};
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(CpuThreads, ParallelForRunsEveryItemOnce) {
  cpu::set_num_threads(3);
  for (size_t count : {size_t(0), size_t(1), size_t(2), size_t(1000)}) {
    std::vector<std::atomic<int>> hits(count);
    std::vector<std::atomic<int>> inner(count * 5);
    cpu::parallel_for(count, true, [&](size_t k) {
      hits[k].fetch_add(1);
      cpu::parallel_for(5, true, [&](size_t j) { inner[k * 5 + j].fetch_add(1); });  // nested: serial
    });
    for (size_t k = 0; k < count; ++k) ASSERT_EQ(hits[k].load(), 1) << k;
    for (size_t k = 0; k < inner.size(); ++k) ASSERT_EQ(inner[k].load(), 1) << k;
  }
  cpu::set_num_threads(0);
}

TEST(CpuThreads, SoftmaxXentIndependentOfThreadCount) {
  const int N = 67, V = 1001;
  auto logits = random_vector(size_t(N) * V, 1, -8.f, 8.f);
  std::vector<int32_t> targets(N);
  for (int n = 0; n < N; ++n) targets[n] = n % 5 == 0 ? 0 : (n * 37) % V;
  auto [a, b] = at_1_and_3_threads<std::vector<float>>([&] {
    std::vector<float> loss(N), lse(N), lse_only(N), d(size_t(N) * V);
    cpu::softmax_xent_forward(logits.data(), targets.data(), N, V, loss.data(), lse.data());
    cpu::logsumexp_rows(logits.data(), N, V, lse_only.data());
    cpu::softmax_xent_backward(logits.data(), targets.data(), lse.data(), N, V, 0.25f, d.data());
    d.insert(d.end(), loss.begin(), loss.end());
    d.insert(d.end(), lse.begin(), lse.end());
    d.insert(d.end(), lse_only.begin(), lse_only.end());
    return d;
  });
  EXPECT_TRUE(same_bits(a, b));
}

TEST(CpuThreads, DropoutIndependentOfThreadCount) {
  const size_t n = 50001;
  auto x = random_vector(n, 2);
  auto [a, b] = at_1_and_3_threads<std::vector<float>>([&] {
    std::vector<float> y(n);
    cpu::dropout_forward(x.data(), y.data(), n, 0.3f, 99, (uint64_t(5) << 32) - 7);
    return y;
  });
  EXPECT_TRUE(same_bits(a, b));
}

TEST(CpuThreads, AdamIndependentOfThreadCount) {
  const size_t n = 100003;
  auto p0 = random_vector(n, 3), g = random_vector(n, 4, -0.1f, 0.1f);
  AdamConfig cfg;
  cfg.weight_decay = 0.01f;
  auto [a, b] = at_1_and_3_threads<std::vector<float>>([&] {
    std::vector<float> p = p0, m(n, 0.f), v(n, 0.f);
    for (long step = 1; step <= 2; ++step) cpu::adam_step(p.data(), g.data(), m.data(), v.data(), n, cfg, step);
    p.insert(p.end(), m.begin(), m.end());
    p.insert(p.end(), v.begin(), v.end());
    return p;
  });
  EXPECT_TRUE(same_bits(a, b));
}

// Batch large enough for both the forward and the backward cell loops to go parallel.
TEST(CpuThreads, LstmIndependentOfThreadCount) {
  const int B = 650, T = 3, I = 7, H = 64, G = 4 * H;
  const size_t rows = size_t(B) * T;
  auto x = random_vector(rows * I, 6), w_ih = random_vector(size_t(G) * I, 7, -0.3f, 0.3f),
       w_hh = random_vector(size_t(G) * H, 8, -0.3f, 0.3f), b_ih = random_vector(G, 9), b_hh = random_vector(G, 10),
       dh0 = random_vector(rows * H, 11);
  const LstmWeights w{w_ih.data(), w_hh.data(), b_ih.data(), b_hh.data()};
  auto [a, b] = at_1_and_3_threads<std::vector<float>>([&] {
    std::vector<float> h(rows * H), c(rows * H), gates(rows * G), dh = dh0, dx(rows * I), gw_ih(size_t(G) * I),
        gw_hh(size_t(G) * H), gb_ih(G), gb_hh(G);
    cpu::lstm_forward({B, T, I, H}, x.data(), w, {h.data(), c.data(), gates.data()});
    cpu::lstm_backward({B, T, I, H}, x.data(), w, {h.data(), c.data(), gates.data()}, dh.data(), dx.data(),
                       {gw_ih.data(), gw_hh.data(), gb_ih.data(), gb_hh.data()});
    for (auto* v : {&c, &gates, &dh, &dx, &gw_ih, &gw_hh, &gb_ih}) h.insert(h.end(), v->begin(), v->end());
    return h;
  });
  EXPECT_TRUE(same_bits(a, b));
}

// GEMMs are cut into as many pieces as there are threads (kernels/gemm.cpp). The decoder's
// products at batch 64, T=13 (output layer forward and both backward products, the recurrent
// step), untransposed ones with alpha 1 and beta 0 (OpenBLAS's "direct" kernel takes those when
// small) around the size where they start to be cut, odd sizes, and 40x120x400, whose thirds
// would run OpenBLAS's small-matrix kernel and differ in the last bits if it were cut (it is
// too small to be: the test fails with kMinPieceMacs lowered to 1e5).
TEST(CpuThreads, GemmIndependentOfThreadCount) {
  struct Case {
    Trans ta, tb;
    int M, N, K;
    float alpha, beta;
  };
  const Case cases[] = {{Trans::N, Trans::T, 832, 1660, 256, 1.f, 0.f}, {Trans::N, Trans::N, 832, 256, 1660, 1.f, 0.f},
                        {Trans::T, Trans::N, 1660, 256, 832, 1.f, 1.f},  {Trans::N, Trans::T, 64, 1024, 256, 1.f, 1.f},
                        {Trans::N, Trans::N, 64, 1024, 257, 1.f, 0.f},   {Trans::N, Trans::N, 97, 1024, 256, 1.f, 0.f},
                        {Trans::N, Trans::N, 300, 300, 300, 1.f, 0.f},   {Trans::T, Trans::T, 333, 177, 411, 0.7f, 0.3f},
                        {Trans::N, Trans::N, 40, 120, 400, 1.f, 0.f}};
  for (const Case& c : cases) {
    const int lda = c.ta == Trans::N ? c.K : c.M, ldb = c.tb == Trans::N ? c.N : c.K;
    auto A = random_vector(size_t(c.M) * c.K, 12), B = random_vector(size_t(c.K) * c.N, 13),
         C0 = random_vector(size_t(c.M) * c.N, 14);
    auto [one, three] = at_1_and_3_threads<std::vector<float>>([&] {
      std::vector<float> C = C0;
      cpu::gemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, C.data(), c.N);
      return C;
    });
    EXPECT_TRUE(same_bits(one, three)) << c.M << "x" << c.N << "x" << c.K;
  }
}

TEST(CpuThreads, GradNormIndependentOfThreadCount) {
  const size_t n = 300007;
  auto x = random_vector(n, 5, -3.f, 3.f);
  auto [a, b] = at_1_and_3_threads<std::vector<float>>([&] {
    return std::vector<float>{cpu::global_norm(x.data(), n)};
  });
  EXPECT_TRUE(same_bits(a, b));
}

}  // namespace
}  // namespace caption
