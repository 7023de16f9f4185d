#include "kernels/gemm.h"

#include <tuple>

#include "kernels/parallel.h"
#include "tests/test_util.h"

namespace caption {
namespace {

using test::all_close;
using test::random_vector;

// Naive row-major product as the oracle for the BLAS call and its transposes.
// Leading dimensions lda/ldb (0: the tight ones); C is M x N, tight.
std::vector<float> naive(Trans ta, Trans tb, int M, int N, int K, const std::vector<float>& A,
                         const std::vector<float>& B, int lda = 0, int ldb = 0) {
  if (!lda) lda = ta == Trans::N ? K : M;
  if (!ldb) ldb = tb == Trans::N ? N : K;
  std::vector<float> C(size_t(M) * N);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double s = 0;
      for (int k = 0; k < K; ++k)
        s += double(ta == Trans::N ? A[size_t(m) * lda + k] : A[size_t(k) * lda + m]) *
             (tb == Trans::N ? B[size_t(k) * ldb + n] : B[size_t(n) * ldb + k]);
      C[size_t(m) * N + n] = float(s);
    }
  return C;
}

TEST(Gemm, CpuMatchesNaiveAllTransposes) {
  const int M = 7, N = 33, K = 5;
  for (Trans ta : {Trans::N, Trans::T})
    for (Trans tb : {Trans::N, Trans::T}) {
      auto A = random_vector(M * K, 1), B = random_vector(K * N, 2);
      std::vector<float> C(M * N);
      cpu::gemm(ta, tb, M, N, K, 1.f, A.data(), ta == Trans::N ? K : M, B.data(), tb == Trans::N ? N : K,
                0.f, C.data(), N);
      EXPECT_TRUE(all_close(C, naive(ta, tb, M, N, K, A, B), 1e-5f, 1e-5f));
    }
}

// Products large enough to be cut into pieces (kernels/gemm.cpp), by rows (M >= N) and by
// columns, with every transpose, leading dimensions wider than the matrices, alpha and beta:
// each piece must read and write its own part of the operands.
TEST(Gemm, CpuSplitProductsMatchNaive) {
  cpu::set_num_threads(3);
  for (auto [M, N, K] : {std::tuple{517, 301, 129}, std::tuple{203, 611, 150}})
    for (Trans ta : {Trans::N, Trans::T})
      for (Trans tb : {Trans::N, Trans::T}) {
        const int lda = (ta == Trans::N ? K : M) + 3, ldb = (tb == Trans::N ? N : K) + 5, ldc = N + 2;
        auto A = random_vector(size_t(ta == Trans::N ? M : K) * lda, 1),
             B = random_vector(size_t(tb == Trans::N ? K : N) * ldb, 2), C0 = random_vector(size_t(M) * ldc, 3);
        std::vector<float> C = C0;
        cpu::gemm(ta, tb, M, N, K, 0.5f, A.data(), lda, B.data(), ldb, 2.f, C.data(), ldc);
        const auto prod = naive(ta, tb, M, N, K, A, B, lda, ldb);
        std::vector<float> want(C0);
        for (int m = 0; m < M; ++m)
          for (int n = 0; n < N; ++n)
            want[size_t(m) * ldc + n] = 0.5f * prod[size_t(m) * N + n] + 2.f * C0[size_t(m) * ldc + n];
        EXPECT_TRUE(all_close(C, want, 1e-4f, 1e-4f))
            << M << "x" << N << "x" << K << " ta " << int(ta) << " tb " << int(tb);
      }
  cpu::set_num_threads(0);
}

// The recording bench_train_step replays: every product of this thread while set, with its
// shape, leading dimensions and beta, and nothing once stopped or for empty products.
TEST(Gemm, CpuRecordsShapesWhileAsked) {
  std::vector<float> A(6 * 10, 1.f), B(10 * 4, 1.f), C(5 * 9, 0.f);
  std::vector<GemmShape> calls;
  cpu::gemm(Trans::N, Trans::N, 2, 3, 4, 1.f, A.data(), 4, B.data(), 3, 0.f, C.data(), 3);
  cpu::record_gemms(&calls);
  cpu::gemm(Trans::T, Trans::N, 5, 4, 6, 1.f, A.data(), 10, B.data(), 4, 1.f, C.data(), 9);
  cpu::gemm(Trans::N, Trans::T, 0, 4, 6, 1.f, A.data(), 6, B.data(), 6, 0.f, C.data(), 4);
  cpu::record_gemms(nullptr);
  cpu::gemm(Trans::N, Trans::N, 2, 3, 4, 1.f, A.data(), 4, B.data(), 3, 0.f, C.data(), 3);
  ASSERT_EQ(calls.size(), 1u);
  const GemmShape& g = calls[0];
  EXPECT_EQ(g.ta, Trans::T);
  EXPECT_EQ(g.tb, Trans::N);
  EXPECT_EQ(g.M, 5);
  EXPECT_EQ(g.N, 4);
  EXPECT_EQ(g.K, 6);
  EXPECT_EQ(g.lda, 10);
  EXPECT_EQ(g.ldb, 4);
  EXPECT_EQ(g.ldc, 9);
  EXPECT_EQ(g.beta, 1.f);
}

TEST(Gemm, CudaMatchesCpu) {
  REQUIRE_CUDA();
  Context gpu(Device::CUDA);
  const int M = 1, N = 1003, K = 257;
  for (Trans ta : {Trans::N, Trans::T})
    for (Trans tb : {Trans::N, Trans::T}) {
      auto A = random_vector(M * K, 3), B = random_vector(K * N, 4), C0 = random_vector(M * N, 5);
      int lda = ta == Trans::N ? K : M, ldb = tb == Trans::N ? N : K;
      std::vector<float> ref = C0;
      cpu::gemm(ta, tb, M, N, K, 0.5f, A.data(), lda, B.data(), ldb, 2.f, ref.data(), N);
      auto dA = test::to_device(gpu, A), dB = test::to_device(gpu, B), dC = test::to_device(gpu, C0);
      gemm(gpu.exec(), ta, tb, M, N, K, 0.5f, dA.data(), lda, dB.data(), ldb, 2.f, dC.data(), N);
      EXPECT_TRUE(all_close(test::to_host(gpu, dC), ref, 1e-4f, 1e-4f));
    }
}

}  // namespace
}  // namespace caption
