#include "kernels/gemm.h"

#include <cblas.h>

#include <algorithm>
#include <mutex>

#include "kernels/parallel.h"

namespace caption::cpu {

namespace {

thread_local std::vector<GemmShape>* recording = nullptr;

// A product is cut into pieces only where each piece has at least this many multiply-adds (20-30
// us on one core, the order of a worker's wake-up). Smaller products take other paths in
// OpenBLAS (its small-matrix kernels, up to 100^3 on AVX-512), which sum in another order than
// its packed kernels; pieces above it run the packed kernels as the whole product would, and
// those give each element the same sums wherever its tile falls, so results do not depend on
// the thread count: CpuThreads.GemmIndependentOfThreadCount, and 4,000 random shapes of 1-30M
// multiply-adds at 1, 2, 3, 4 and 8 threads when this was written (with 1e5 here, a quarter of
// them differed in the last bits).
constexpr double kMinPieceMacs = 1.05e6;

void sgemm(Trans ta, Trans tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
           float beta, float* C, int ldc) {
  cblas_sgemm(CblasRowMajor, ta == Trans::T ? CblasTrans : CblasNoTrans, tb == Trans::T ? CblasTrans : CblasNoTrans,
              M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace

void record_gemms(std::vector<GemmShape>* sink) { recording = sink; }

// The pieces run on parallel_for's pool, OpenBLAS single-threaded, so that one pool serves the
// GEMMs and the engine's kernels between them. With OpenBLAS's own threads, which spin after a
// product (for up to 2^28 cycles by default) and wait for each other at barriers inside it, one
// other busy process on a 2-core machine made a B=64 training step 3x slower (96-111 ms against
// 35), where with the pool it takes 60-77 ms.
void gemm(Trans ta, Trans tb, int M, int N, int K, float alpha, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc) {
  if (M == 0 || N == 0) return;
  if (recording) recording->push_back({ta, tb, M, N, K, lda, ldb, ldc, beta});
#if defined(OPENBLAS_VERSION)
  static std::once_flag single;
  std::call_once(single, [] { openblas_set_num_threads(1); });
#endif
  // Along the longer side of C, in steps of 16 rows or columns (whole vectors): each piece
  // packs the other operand anew, which costs least when that one is the smaller. As many
  // pieces as there are threads, fewer where the smallest (the last) would fall below the minimum.
  const bool by_rows = M >= N;
  const int extent = by_rows ? M : N;
  const double line_macs = double(by_rows ? N : M) * K;
  int step = extent;
  for (int pieces = num_threads(); pieces >= 2; --pieces) {
    const int s = ((extent + pieces - 1) / pieces + 15) / 16 * 16;
    if ((extent - (extent - 1) / s * s) * line_macs >= kMinPieceMacs) {
      step = s;
      break;
    }
  }
  if (step >= extent) return sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  parallel_for(size_t((extent + step - 1) / step), true, [&](size_t p) {
    const int i0 = int(p) * step, n = std::min(extent, i0 + step) - i0;
    if (by_rows)
      sgemm(ta, tb, n, N, K, alpha, ta == Trans::N ? A + size_t(i0) * lda : A + i0, lda, B, ldb, beta,
            C + size_t(i0) * ldc, ldc);
    else
      sgemm(ta, tb, M, n, K, alpha, A, lda, tb == Trans::N ? B + i0 : B + size_t(i0) * ldb, ldb, beta, C + i0, ldc);
  });
}

}  // namespace caption::cpu
