#include "kernels/gemm.h"
#include "runtime/cuda_check.h"

namespace caption::cuda {

// cuBLAS is column-major: a row-major C = op(A) op(B) is the column-major C^T = op(B)^T op(A)^T,
// so the operands swap and M/N swap, with the same transpose flags.
void gemm(BlasHandle h, Trans ta, Trans tb, int M, int N, int K, float alpha, const float* A,
          int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  if (M == 0 || N == 0) return;
  CUBLAS_CHECK_THROW(cublasSgemm(h, tb == Trans::T ? CUBLAS_OP_T : CUBLAS_OP_N,
                                 ta == Trans::T ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, ldb,
                                 A, lda, &beta, C, ldc));
}

}  // namespace caption::cuda
