#pragma once
// Row-major single-precision GEMM: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C.
// CPU: OpenBLAS. CUDA: cuBLAS (plain FP32). Every dense product of the engine goes here.
#include <stdexcept>
#include <vector>

#include "runtime/exec.h"

namespace caption {

enum class Trans { N, T };

// One product's shape: enough to run it again alone (bench_train_step's GEMM floor).
struct GemmShape {
  Trans ta, tb;
  int M, N, K, lda, ldb, ldc;
  float beta;
};

namespace cpu {
void gemm(Trans ta, Trans tb, int M, int N, int K, float alpha, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc);
// While sink is set, the shape of every cpu::gemm this thread runs is appended to it (the
// kernels call gemm from the calling thread only); nullptr stops the recording.
void record_gemms(std::vector<GemmShape>* sink);
}
namespace cuda {
void gemm(BlasHandle h, Trans ta, Trans tb, int M, int N, int K, float alpha, const float* A,
          int lda, const float* B, int ldb, float beta, float* C, int ldc);
}

inline void gemm(const Exec& ex, Trans ta, Trans tb, int M, int N, int K, float alpha,
                 const float* A, int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  if (ex.cuda())
    CAPTION_CUDA_CALL(cuda::gemm(ex.blas, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc));
  else
    cpu::gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace caption
