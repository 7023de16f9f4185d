#pragma once
// One cuBLASLt matmul with the bias (+ReLU) epilogue, planned once and run many times:
//   D = act(op(A) B + beta C + bias),  column-major, D m x n, the bias one value per row of D.
// Serves the dense layer (kernels/dense.cu) and 1x1 NHWC convolutions (kernels/conv2d.cu), which
// are the same product: in row-major terms y[rows, out] = x[rows, in] W[out, in]^T, that is
// y^T = W x^T with W's row-major [out, in] read as the column-major in x out matrix, transposed.
// CUDA builds only (it includes cuBLASLt); CPU code uses cpu::gemm.
#include <cublasLt.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "runtime/exec.h"
#include "runtime/tensor.h"

namespace caption::cuda {

struct LtMatmulSpec {
  int64_t m, n, k;    // D is m x n; op(A) is m x k, B is k x n
  bool trans_a;       // A is stored k x m (leading dimension k) and taken transposed; else m x k
  DType dtype;        // of A, B, C, D and the bias: F32 or BF16 (products accumulate in FP32)
  bool tf32;          // F32 only: allow TF32 tensor cores; else strict FP32 (lt_matmul.cu, compute_types)
  bool relu;
  bool accumulate;    // beta = 1 with C (same layout as D), else beta = 0 and C unused
  // Bytes that the pointers passed to run() for A, B, C, D and the bias are aligned to (powers
  // of two). The algorithm is chosen for these, so a plan serves any pointers that honour them.
  uint32_t align_a, align_b, align_c, align_d, align_bias;
};

class LtMatmul {
 public:
  // Null when cuBLASLt offers no algorithm for spec (the caller takes another route).
  static std::unique_ptr<LtMatmul> plan(BlasHandle blas, const LtMatmulSpec& spec);
  // plan(), made once per (current device, spec) and kept for the process: cuBLASLt's heuristic
  // query costs host time that a call made every decode step should not pay each time.
  static const LtMatmul* cached(BlasHandle blas, const LtMatmulSpec& spec);
  ~LtMatmul();
  LtMatmul(const LtMatmul&) = delete;
  LtMatmul& operator=(const LtMatmul&) = delete;

  // On ex.stream, its workspace from ex.pool; the pointers honour the spec's alignments. A plan
  // is read-only here, so threads may share it. launch() returns cuBLAS's status, run() throws.
  cublasStatus_t launch(const Exec& ex, const void* A, const void* B, const void* C, const void* bias,
                        void* D) const;
  void run(const Exec& ex, const void* A, const void* B, const void* C, const void* bias, void* D) const;
  size_t workspace() const { return heuristic_.workspaceSize; }

 private:
  LtMatmul() = default;
  LtMatmulSpec spec_{};
  cublasComputeType_t compute_ = CUBLAS_COMPUTE_32F;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, d_ = nullptr;
  cublasLtMatmulHeuristicResult_t heuristic_{};
};

}  // namespace caption::cuda
