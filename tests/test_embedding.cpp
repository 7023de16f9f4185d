#include "kernels/embedding.h"

#include <algorithm>
#include <cstring>

#include "tests/test_util.h"

namespace caption {
namespace {

using test::random_vector;

std::vector<int32_t> random_ids(int N, int V, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, V - 1);
  std::vector<int32_t> ids(N);
  for (auto& id : ids) id = dist(rng);
  return ids;
}

TEST(Embedding, ForwardGathersRows) {
  const int V = 9, D = 3;
  auto table = random_vector(V * D, 1);
  const std::vector<int32_t> ids = {4, 0, 8, 4, 2};
  std::vector<float> out(ids.size() * D);
  cpu::embedding_forward(table.data(), ids.data(), int(ids.size()), D, out.data());
  for (size_t n = 0; n < ids.size(); ++n)
    for (int d = 0; d < D; ++d) EXPECT_EQ(out[n * D + d], table[ids[n] * D + d]);
}

// loss = sum(embedding(table, ids) * w). Every row but the padding row must match central
// differences; the padding row and rows of ids that never occur must be exactly zero.
TEST(Embedding, BackwardMatchesFiniteDifferences) {
  const int V = 11, D = 5, pad = 0;
  const std::vector<int32_t> ids = {3, 0, 3, 7, 1, 3, 0, 10, 7, 7, 2, 0, 3, 5, 1, 10, 3};  // 4, 6, 8, 9 unused
  const int N = int(ids.size());
  auto table = random_vector(V * D, 2), w = random_vector(N * D, 3);
  std::vector<float> out(N * D), grad(V * D, 123.f);  // garbage: backward must overwrite
  auto loss = [&] {
    cpu::embedding_forward(table.data(), ids.data(), N, D, out.data());
    double s = 0;
    for (int i = 0; i < N * D; ++i) s += double(out[i]) * w[i];
    return s;
  };
  cpu::embedding_backward(w.data(), ids.data(), N, D, V, pad, grad.data());
  for (int v = 0; v < V; ++v) {
    const bool used = std::find(ids.begin(), ids.end(), v) != ids.end();
    for (int d = 0; d < D; ++d) {
      const float g = grad[v * D + d];
      if (v == pad || !used) {
        EXPECT_EQ(g, 0.f) << "row " << v;
        continue;
      }
      float& t = table[v * D + d];
      const float t0 = t, eps = 1e-2f;
      t = t0 + eps;
      const double up = loss(), tu = t;
      t = t0 - eps;
      const double dn = loss(), td = t;
      t = t0;
      EXPECT_NEAR(g, (up - dn) / (tu - td), 1e-4 + 1e-3 * std::fabs(g)) << "row " << v << " col " << d;
    }
  }
}

TEST(Embedding, AllPaddingGivesZeroGradient) {
  const int V = 6, D = 4, N = 7, pad = 2;
  const std::vector<int32_t> ids(N, pad);
  auto g = random_vector(N * D, 4);
  std::vector<float> grad(V * D, 1.f);
  cpu::embedding_backward(g.data(), ids.data(), N, D, V, pad, grad.data());
  EXPECT_EQ(grad, std::vector<float>(V * D, 0.f));
}

// The summation order of kernels/embedding.h, spelled out for one id: id 1 occurs 5 times and id 2
// 70 times, interleaved, so id 2's occurrences sit at sorted slots 5..74 and its pieces are slots
// 5-31, 32-63 and 64-74. A first row of 1e8 and then ones make the order show in the bits: added
// one by one to 1e8 (float spacing 8 there) each 1 is lost, summed in pieces they are not.
TEST(Embedding, BackwardSumsPiecesOfChunksInOrder) {
  static_assert(kEmbeddingChunk == 32, "the pieces below assume 32-slot chunks");
  const int V = 3, D = 2;
  std::vector<int32_t> ids;
  for (int r = 0; r < 70; ++r) {
    if (r % 14 == 3) ids.push_back(1);
    ids.push_back(2);
  }
  ASSERT_EQ(ids.size(), 75u);
  const int N = int(ids.size());
  std::vector<float> g(size_t(N) * D);
  std::vector<float> rows2;  // id 2's rows, column 0, in position order
  for (int n = 0; n < N; ++n) {
    g[n * D] = ids[n] == 2 && rows2.empty() ? 1e8f : 1.f;
    g[n * D + 1] = float(n);
    if (ids[n] == 2) rows2.push_back(g[n * D]);
  }
  float total = 0.f;
  for (auto [lo, hi] : {std::pair{0, 27}, {27, 59}, {59, 70}}) {  // occurrences of id 2 per piece
    float piece = 0.f;
    for (int r = lo; r < hi; ++r) piece += rows2[r];
    total += piece;
  }
  float sequential = 0.f;
  for (float x : rows2) sequential += x;
  ASSERT_NE(total, sequential) << "the values should tell the orders apart";
  std::vector<float> grad(size_t(V) * D);
  cpu::embedding_backward(g.data(), ids.data(), N, D, V, 0, grad.data());
  EXPECT_EQ(grad[2 * D], total);
}

// Repeated ids with a skewed distribution (one id in about a third of the positions), padding
// included: CUDA forward and backward equal the CPU bit for bit, since both sum in the order of
// kernels/embedding.h, and repeated runs give identical bits. A run of one id crosses many chunks.
TEST(Embedding, CudaMatchesCpuAndIsDeterministic) {
  REQUIRE_CUDA();
  Context gpu(Device::CUDA);
  struct Shape {
    int N, D, V;
  };
  for (Shape s : {Shape{1, 1, 1}, Shape{1, 50, 7}, Shape{257, 50, 1001}, Shape{10240, 50, 9973}, Shape{300, 33, 2}}) {
    auto ids = random_ids(s.N, s.V, uint32_t(s.N + s.V));
    for (int n = 0; n < s.N; n += 3) ids[n] = s.V / 2;  // a frequent id
    for (int n = 1; n < s.N; n += 7) ids[n] = 0;        // padding
    auto table = random_vector(size_t(s.V) * s.D, 5), g = random_vector(size_t(s.N) * s.D, 6);
    std::vector<float> out(size_t(s.N) * s.D), grad(size_t(s.V) * s.D);
    cpu::embedding_forward(table.data(), ids.data(), s.N, s.D, out.data());
    cpu::embedding_backward(g.data(), ids.data(), s.N, s.D, s.V, 0, grad.data());

    auto dT = test::to_device(gpu, table), dG = test::to_device(gpu, g);
    auto dIds = test::to_device(gpu, ids);
    auto dOut = test::to_device(gpu, std::vector<float>(out.size()));
    auto dGrad = test::to_device(gpu, std::vector<float>(grad.size(), 7.f));
    embedding_forward(gpu.exec(), dT.data(), dIds.data(), s.N, s.D, dOut.data());
    EXPECT_EQ(test::to_host(gpu, dOut), out) << "N=" << s.N;
    embedding_backward(gpu.exec(), dG.data(), dIds.data(), s.N, s.D, s.V, 0, dGrad.data());
    auto first = test::to_host(gpu, dGrad);
    EXPECT_EQ(0, std::memcmp(first.data(), grad.data(), grad.size() * sizeof(float))) << "N=" << s.N;
    embedding_backward(gpu.exec(), dG.data(), dIds.data(), s.N, s.D, s.V, 0, dGrad.data());
    auto second = test::to_host(gpu, dGrad);
    EXPECT_EQ(0, std::memcmp(first.data(), second.data(), grad.size() * sizeof(float))) << "N=" << s.N;
  }
}

TEST(Embedding, CudaAllPaddingGivesZeroGradient) {
  REQUIRE_CUDA();
  Context gpu(Device::CUDA);
  const int V = 37, D = 50, N = 40;
  auto dIds = test::to_device(gpu, std::vector<int32_t>(N, 0));
  auto dG = test::to_device(gpu, random_vector(N * D, 7));
  auto dGrad = test::to_device(gpu, std::vector<float>(V * D, 1.f));
  embedding_backward(gpu.exec(), dG.data(), dIds.data(), N, D, V, 0, dGrad.data());
  EXPECT_EQ(test::to_host(gpu, dGrad), std::vector<float>(V * D, 0.f));
}

}  // namespace
}  // namespace caption
