#include <cublasLt.h>

#include <cstdint>

#include "kernels/dense.h"
#include "kernels/gemm.h"
#include "runtime/cuda_check.h"
#include "runtime/memory_pool.h"

namespace caption::cuda {

namespace {

// Owns the cuBLASLt descriptors of one call, so that a throw releases them.
struct LtPlan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t w = nullptr, x = nullptr, y = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  LtPlan() = default;
  LtPlan(const LtPlan&) = delete;
  LtPlan& operator=(const LtPlan&) = delete;
  ~LtPlan() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (y) cublasLtMatrixLayoutDestroy(y);
    if (x) cublasLtMatrixLayoutDestroy(x);
    if (w) cublasLtMatrixLayoutDestroy(w);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

// The alignment cuBLASLt may assume for a pointer: the largest power of two up to 256 that
// divides it. Callers may pass views into larger buffers, so the default (256) is unsafe.
uint32_t alignment_of(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  uint32_t al = 256;
  while (al > 1 && a % al != 0) al /= 2;
  return al;
}

constexpr uint64_t kMaxWorkspace = 32u << 20;

// y = act(x W^T + b) as one cuBLASLt matmul with the bias (+ReLU) epilogue. In column-major
// terms y^T [N,M] = W [N,K] x^T [K,M]: row-major W is the K x N column-major matrix W^T, taken
// transposed, and row-major x is the K x M column-major x^T, taken as is. The epilogue adds
// the bias along the N rows of y^T, one value per output feature. Returns false when
// cuBLASLt offers no algorithm for this case, so that the caller takes the unfused route.
bool lt_dense_forward(const Exec& ex, const float* x, const float* W, const float* b, float* y, int M, int N,
                      int K, Activation act) {
  LtPlan p;
  // Pedantic FP32, like the shared cuBLAS handle: no TF32.
  CUBLAS_CHECK_THROW(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F_PEDANTIC, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  const cublasLtEpilogue_t epi = act == Activation::ReLU ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
  CUBLAS_CHECK_THROW(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  CUBLAS_CHECK_THROW(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  CUBLAS_CHECK_THROW(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  // Set before the heuristic query, which reads the pointer's alignment.
  CUBLAS_CHECK_THROW(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &b, sizeof(b)));

  CUBLAS_CHECK_THROW(cublasLtMatrixLayoutCreate(&p.w, CUDA_R_32F, K, N, K));
  CUBLAS_CHECK_THROW(cublasLtMatrixLayoutCreate(&p.x, CUDA_R_32F, K, M, K));
  CUBLAS_CHECK_THROW(cublasLtMatrixLayoutCreate(&p.y, CUDA_R_32F, N, M, N));

  CUBLAS_CHECK_THROW(cublasLtMatmulPreferenceCreate(&p.pref));
  const uint64_t max_ws = kMaxWorkspace;
  const uint32_t align_w = alignment_of(W), align_x = alignment_of(x), align_y = alignment_of(y);
  CUBLAS_CHECK_THROW(cublasLtMatmulPreferenceSetAttribute(p.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                          &max_ws, sizeof(max_ws)));
  CUBLAS_CHECK_THROW(cublasLtMatmulPreferenceSetAttribute(p.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                          &align_w, sizeof(align_w)));
  CUBLAS_CHECK_THROW(cublasLtMatmulPreferenceSetAttribute(p.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                          &align_x, sizeof(align_x)));
  CUBLAS_CHECK_THROW(cublasLtMatmulPreferenceSetAttribute(p.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                          &align_y, sizeof(align_y)));
  CUBLAS_CHECK_THROW(cublasLtMatmulPreferenceSetAttribute(p.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                          &align_y, sizeof(align_y)));

  // A cuBLAS handle may be used wherever a cuBLASLt handle is expected.
  cublasLtHandle_t lt = reinterpret_cast<cublasLtHandle_t>(ex.blas);
  cublasLtMatmulHeuristicResult_t heur{};
  int found = 0;
  cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt, p.op, p.w, p.x, p.y, p.y, p.pref, 1, &heur, &found);
  if (st == CUBLAS_STATUS_NOT_SUPPORTED || (st == CUBLAS_STATUS_SUCCESS && found == 0)) return false;
  CUBLAS_CHECK_THROW(st);

  PoolBuffer<char> workspace(*ex.pool, heur.workspaceSize, ex.stream);
  const float alpha = 1.f, beta = 0.f;
  CUBLAS_CHECK_THROW(cublasLtMatmul(lt, p.op, &alpha, W, p.w, x, p.x, &beta, y, p.y, y, p.y, &heur.algo,
                                    workspace.data(), heur.workspaceSize, ex.stream));
  return true;
}

// Unfused epilogue for the fallback route: y = act(y + b) in one pass.
__global__ void bias_act_kernel(float* y, const float* b, size_t total, int N, bool relu) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const float v = y[i] + b[i % N];
    y[i] = relu && !(v > 0.f) ? 0.f : v;
  }
}

// Backward of the bias and activation, for a tile of 32 columns and kRowsPerBlock rows:
// applies the ReLU mask to dy in place and writes the tile's column sums to
// partial[blockIdx.y, :]. Each thread sums its rows in ascending order and the 8 row
// groups are combined in a fixed order, so the result depends only on the shape.
constexpr int kRowGroups = 8;
constexpr int kRowsPerBlock = 256;

__global__ void bias_act_backward_kernel(const float* y, float* dy, float* partial, int M, int N, bool relu) {
  __shared__ float sums[kRowGroups][32];
  const int n = blockIdx.x * 32 + threadIdx.x;
  const int m0 = blockIdx.y * kRowsPerBlock;
  const int m1 = min(M, m0 + kRowsPerBlock);
  float s = 0.f;
  if (n < N) {
    for (int m = m0 + threadIdx.y; m < m1; m += kRowGroups) {
      const size_t i = size_t(m) * N + n;
      float g = dy[i];
      if (relu && !(y[i] > 0.f)) dy[i] = g = 0.f;
      s += g;
    }
  }
  sums[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && n < N) {
    for (int r = 1; r < kRowGroups; ++r) s += sums[r][threadIdx.x];
    partial[size_t(blockIdx.y) * N + n] = s;
  }
}

// db[n] = sum over row blocks of partial[r, n], in ascending r.
__global__ void sum_partials_kernel(const float* partial, float* db, int blocks, int N) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  float s = 0.f;
  for (int r = 0; r < blocks; ++r) s += partial[size_t(r) * N + n];
  db[n] = s;
}

}  // namespace

void dense_forward(const Exec& ex, const float* x, const float* W, const float* b, float* y, int M, int N, int K,
                   Activation act) {
  if (M == 0 || N == 0) return;
  if (lt_dense_forward(ex, x, W, b, y, M, N, K, act)) return;
  // cuBLASLt offers no fused algorithm for this case: plain GEMM plus one epilogue pass.
  gemm(ex.blas, Trans::N, Trans::T, M, N, K, 1.f, x, K, W, K, 0.f, y, N);
  const size_t total = size_t(M) * N;
  const size_t blocks = (total + 255) / 256;
  bias_act_kernel<<<int(blocks < 65536 ? blocks : 65536), 256, 0, ex.stream>>>(y, b, total, N,
                                                                              act == Activation::ReLU);
  CUDA_CHECK_LAUNCH();
}

void dense_backward(const Exec& ex, const float* x, const float* W, const float* y, float* dy, float* dx,
                    float* dW, float* db, int M, int N, int K, Activation act) {
  if (N == 0) return;
  const int row_blocks = (M + kRowsPerBlock - 1) / kRowsPerBlock;
  if (row_blocks == 0) {
    CUDA_CHECK_THROW(cudaMemsetAsync(db, 0, size_t(N) * sizeof(float), ex.stream));
  } else {
    // With one row block the tile sums are db itself; otherwise they go through scratch.
    PoolBuffer<float> partial;
    if (row_blocks > 1) partial = PoolBuffer<float>(*ex.pool, size_t(row_blocks) * N, ex.stream);
    float* sums = row_blocks > 1 ? partial.data() : db;
    dim3 grid((N + 31) / 32, row_blocks), block(32, kRowGroups);
    bias_act_backward_kernel<<<grid, block, 0, ex.stream>>>(y, dy, sums, M, N, act == Activation::ReLU);
    CUDA_CHECK_LAUNCH();
    if (row_blocks > 1) {
      sum_partials_kernel<<<(N + 255) / 256, 256, 0, ex.stream>>>(sums, db, row_blocks, N);
      CUDA_CHECK_LAUNCH();
    }
  }
  gemm(ex.blas, Trans::T, Trans::N, N, K, M, 1.f, dy, N, x, K, 0.f, dW, K);                // dW = dy^T x
  if (dx) gemm(ex.blas, Trans::N, Trans::N, M, K, N, 1.f, dy, N, W, K, 0.f, dx, K);        // dx = dy W
}

}  // namespace caption::cuda
