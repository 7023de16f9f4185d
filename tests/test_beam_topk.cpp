#include "kernels/beam_topk.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tests/test_util.h"

namespace caption {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

struct TopK {
  std::vector<int32_t> tokens;
  std::vector<float> logp;
};

// Logits drawn from a few integers (many exact ties), some -inf when with_inf, and
// per-row lse of any value: ties in logits stay ties in logits - lse.
std::vector<float> tied_logits(int R, int V, uint32_t seed, bool with_inf = false) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(-3, 3);
  std::vector<float> x(size_t(R) * V);
  for (auto& v : x) {
    int d = dist(rng);
    v = with_inf && d == -3 ? -kInf : float(d);
  }
  return x;
}

// The oracle: sort every allowed (logp, token) of the row, best first, lower id on ties.
TopK brute_force(const std::vector<float>& logits, const std::vector<float>& lse, int R, int V, int k,
                 int32_t first, int32_t banned) {
  TopK out;
  for (int r = 0; r < R; ++r) {
    std::vector<std::pair<float, int32_t>> row;
    for (int32_t v = std::max(first, 0); v < V; ++v)
      if (v != banned) row.push_back({logits[size_t(r) * V + v] - lse[r], v});
    std::sort(row.begin(), row.end(),
              [](auto& a, auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    row.resize(std::max<size_t>(row.size(), k), {-kInf, -1});
    for (int i = 0; i < k; ++i) out.tokens.push_back(row[i].second), out.logp.push_back(row[i].first);
  }
  return out;
}

TopK run(Device device, const std::vector<float>& logits, const std::vector<float>& lse, int R, int V, int k,
         int32_t first, int32_t banned) {
  Context ctx(device);
  auto dl = test::to_device(ctx, logits), dlse = test::to_device(ctx, lse);
  PoolBuffer<int32_t> tokens(ctx.pool(), size_t(R) * k, ctx.exec().stream);
  PoolBuffer<float> logp(ctx.pool(), size_t(R) * k, ctx.exec().stream);
  beam_topk(ctx.exec(), dl.data(), dlse.data(), R, V, k, first, banned, tokens.data(), logp.data());
  return {test::to_host(ctx, tokens), test::to_host(ctx, logp)};
}

// Exact equality: both sides compute logit - lse in float, so values must match bit for bit.
void expect_same(const TopK& got, const TopK& want, const std::string& what) {
  EXPECT_EQ(got.tokens, want.tokens) << what;
  ASSERT_EQ(got.logp.size(), want.logp.size()) << what;
  for (size_t i = 0; i < got.logp.size(); ++i)
    ASSERT_TRUE(got.logp[i] == want.logp[i]) << what << " at " << i << ": " << got.logp[i] << " vs " << want.logp[i];
}

std::string shape(int R, int V, int k, int32_t first, int32_t banned) {
  return "R=" + std::to_string(R) + " V=" + std::to_string(V) + " k=" + std::to_string(k) +
         " first=" + std::to_string(first) + " banned=" + std::to_string(banned);
}

TEST(BeamTopk, CpuMatchesBruteForceWithTiesAndMasks) {
  uint32_t seed = 0;
  for (int V : {1, 2, 3, 5, 7, 33, 100}) {
    for (int k : {1, 2, 3, 6, 8, 17, 64}) {
      for (auto [first, banned] : {std::pair{0, -1}, {2, 3}, {2, 0}, {-5, 1}, {V - 1, V - 1}, {V + 4, -1}}) {
        for (int R : {1, 4}) {
          ++seed;
          auto logits = tied_logits(R, V, seed, seed % 2 == 0);
          auto lse = test::random_vector(R, seed, -2.f, 7.f);
          expect_same(run(Device::CPU, logits, lse, R, V, k, first, banned),
                      brute_force(logits, lse, R, V, k, first, banned), shape(R, V, k, first, banned));
        }
      }
    }
  }
}

TEST(BeamTopk, CpuPadsWhenFewerTokensAreAllowed) {
  // V=6, first 2, banned 3: tokens 2, 4, 5 remain; the -inf token still ranks before padding.
  std::vector<float> logits = {9, 9, 1, 9, -kInf, 1}, lse = {0.5f};
  TopK got = run(Device::CPU, logits, lse, 1, 6, 5, 2, 3);
  EXPECT_EQ(got.tokens, (std::vector<int32_t>{2, 5, 4, -1, -1}));
  EXPECT_EQ(got.logp, (std::vector<float>{0.5f, 0.5f, -kInf, -kInf, -kInf}));
}

TEST(BeamTopk, CpuManyRowsMatchBruteForce) {
  // Enough logits for the thread pool; float logits, so ties come only from rounding.
  const int R = 301, V = 2003, k = 10;
  auto logits = test::random_vector(size_t(R) * V, 7, -20.f, 20.f);
  auto lse = test::random_vector(R, 8, 15.f, 25.f);
  expect_same(run(Device::CPU, logits, lse, R, V, k, 2, 3), brute_force(logits, lse, R, V, k, 2, 3), "many rows");
}

TEST(BeamTopk, RejectsKOutsideOneTo64) {
  std::vector<float> logits(10, 0.f), lse(1, 0.f);
  EXPECT_THROW(run(Device::CPU, logits, lse, 1, 10, 0, 0, -1), std::invalid_argument);
  EXPECT_THROW(run(Device::CPU, logits, lse, 1, 10, 65, 0, -1), std::invalid_argument);
  EXPECT_NO_THROW(run(Device::CPU, logits, lse, 1, 10, 64, 0, -1));
}

TEST(BeamTopk, CudaMatchesCpu) {
  REQUIRE_CUDA();
  struct Case {
    int R, V, k;
    int32_t first, banned;
    bool ties;
  };
  // One of each per-thread list size (k <= 2, 4, ..., 64), V below and above the block width,
  // not multiples of 32, k above the allowed count, rows of many ties and of -inf.
  for (Case c : {Case{1, 1, 1, 0, -1, true}, {1, 1, 4, 0, -1, false}, {3, 5, 8, 2, 3, true},
                 {7, 31, 6, 2, 3, true}, {1, 129, 2, 2, -1, true}, {5, 127, 3, 0, 100, false},
                 {1, 2003, 10, 2, 3, false}, {37, 2003, 16, 2, 3, true}, {65, 9631, 64, 2, 3, false},
                 {9, 9631, 33, 2, 3, true}, {1000, 2011, 6, 2, 3, false}, {2, 300, 64, 250, 260, true},
                 {4, 70, 17, 70, -1, false}}) {
    auto logits = c.ties ? tied_logits(c.R, c.V, c.R + c.V, true)
                         : test::random_vector(size_t(c.R) * c.V, c.R + c.V, -20.f, 20.f);
    auto lse = test::random_vector(c.R, c.V, 10.f, 20.f);
    std::string what = shape(c.R, c.V, c.k, c.first, c.banned);
    TopK cpu = run(Device::CPU, logits, lse, c.R, c.V, c.k, c.first, c.banned);
    expect_same(run(Device::CUDA, logits, lse, c.R, c.V, c.k, c.first, c.banned), cpu, what);
    expect_same(run(Device::CUDA, logits, lse, c.R, c.V, c.k, c.first, c.banned), cpu, what + " (rerun)");
  }
}

TEST(BeamTopk, CudaRejectsKOutsideOneTo64) {
  REQUIRE_CUDA();
  std::vector<float> logits(10, 0.f), lse(1, 0.f);
  EXPECT_THROW(run(Device::CUDA, logits, lse, 1, 10, 65, 0, -1), std::invalid_argument);
}

}  // namespace
}  // namespace caption
