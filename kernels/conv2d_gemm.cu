#include <cstdint>

#include "kernels/conv2d_gemm.h"
#include "kernels/launch.cuh"
#include "runtime/cuda_check.h"
#include "runtime/memory_pool.h"

namespace caption::cuda {

namespace {

// out[(n*P + p)*Q + q, :] = x[n, p*stride, q*stride, :], in units of Vec (C/lanes per pixel).
template <class Vec>
__global__ void gather_pixels(const Vec* x, Vec* out, size_t total, int row, int H, int W, int P, int Q,
                              int stride) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const size_t pixel = i / row;
    const int c = int(i % row), q = int(pixel % Q);
    const size_t np = pixel / Q;
    const int p = int(np % P);
    const size_t n = np / P;
    out[i] = x[((n * H + size_t(p) * stride) * W + size_t(q) * stride) * row + c];
  }
}

template <class Vec>
void gather(const Exec& ex, const ConvShape& s, const void* x, void* out, size_t row_bytes) {
  const int row = int(row_bytes / sizeof(Vec));
  const size_t total = size_t(s.N) * s.P() * s.Q() * row;
  const int threads = 256;
  gather_pixels<Vec><<<grid_for(total, threads), threads, 0, ex.stream>>>(static_cast<const Vec*>(x), static_cast<Vec*>(out), total,
                                                        row, s.H, s.W, s.P(), s.Q(), s.stride);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

cublasStatus_t conv_gemm(const Exec& ex, const LtMatmul& mm, const ConvShape& s, DType dtype, const void* x,
                         const void* w, const void* residual, const void* bias, void* y) {
  if (s.stride == 1) return mm.launch(ex, w, x, residual, bias, y);
  const size_t row_bytes = size_t(s.C) * (dtype == DType::BF16 ? 2 : 4);
  PoolBuffer<char> pixels(*ex.pool, size_t(s.N) * s.P() * s.Q() * row_bytes, ex.stream);
  // 16-byte moves where a pixel's channels fill them.
  if (row_bytes % 16 == 0 && aligned16(x)) gather<uint4>(ex, s, x, pixels.data(), row_bytes);
  else if (dtype == DType::BF16) gather<uint16_t>(ex, s, x, pixels.data(), row_bytes);
  else gather<float>(ex, s, x, pixels.data(), row_bytes);
  return mm.launch(ex, w, pixels.data(), residual, bias, y);
}

}  // namespace caption::cuda
