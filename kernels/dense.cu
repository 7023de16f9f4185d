#include <cstdint>

#include "kernels/dense.h"
#include "kernels/gemm.h"
#include "kernels/launch.cuh"
#include "kernels/lt_matmul.h"
#include "runtime/cuda_check.h"
#include "runtime/memory_pool.h"

namespace caption::cuda {

namespace {

// y = act(x W^T + b) as one cuBLASLt matmul with the bias (+ReLU) epilogue (kernels/lt_matmul.h:
// y^T = W x^T). Returns false when cuBLASLt offers no algorithm for this case, so that the caller
// takes the unfused route.
bool lt_dense_forward(const Exec& ex, const float* x, const float* W, const float* b, float* y, int M, int N,
                      int K, Activation act) {
  // Callers may pass views into larger buffers: assume only the alignment the pointers have.
  const LtMatmulSpec spec{N, M, K, true, DType::F32, false, act == Activation::ReLU, false,
                          alignment_of(W), alignment_of(x), 0, alignment_of(y), alignment_of(b)};
  const LtMatmul* plan = LtMatmul::cached(ex.blas, spec);
  if (!plan) return false;
  plan->run(ex, W, x, nullptr, b, y);
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
  bias_act_kernel<<<grid_for(total, 256), 256, 0, ex.stream>>>(y, b, total, N, act == Activation::ReLU);
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
