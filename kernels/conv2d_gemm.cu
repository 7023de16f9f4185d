#include <cstdint>
#include <limits>

#include "kernels/conv2d_gemm.h"
#include "kernels/launch.cuh"
#include "runtime/cuda_check.h"
#include "runtime/memory_pool.h"

namespace caption::cuda {

namespace {

// cols[i] for the `total` elements of one call's matrix, in units of Vec (zeros over the border).
template <class Vec>
__global__ void im2col_kernel(const Vec* x, Vec* cols, Im2col m, uint32_t total) {
  const uint32_t n_cols = m.cols();
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    const int64_t from = m.source(i / n_cols, i % n_cols);
    cols[i] = from < 0 ? Vec{} : x[from];
  }
}

template <class Vec>
void im2col(const Exec& ex, const Im2col& m, uint32_t total, const void* x, void* cols) {
  const int threads = 256;
  im2col_kernel<Vec><<<grid_for(total, threads), threads, 0, ex.stream>>>(static_cast<const Vec*>(x),
                                                                         static_cast<Vec*>(cols), m, total);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

cublasStatus_t conv_gemm(const Exec& ex, const LtMatmul& mm, const ConvShape& s, DType dtype, const void* x,
                         const void* w, const void* residual, const void* bias, void* y) {
  if (conv_gemm_direct(s)) return mm.launch(ex, w, x, residual, bias, y);
  const size_t element = dtype_size(dtype);
  const int images = conv_gemm_images(s, dtype);
  const size_t rows = size_t(images) * s.P() * s.Q(), cols = size_t(s.R) * s.S * s.C;
  // The gather's 32-bit indices, with room for the grid stride (only one huge image reaches this).
  if (rows * cols > size_t(std::numeric_limits<int32_t>::max())) return CUBLAS_STATUS_NOT_SUPPORTED;
  PoolBuffer<char> matrix(*ex.pool, conv_gemm_scratch(s, dtype), ex.stream);
  // 16-byte moves where a pixel's channels fill them.
  const bool wide = s.C * element % 16 == 0 && aligned16(x);
  const Im2col m(s, wide ? int(16 / element) : 1);
  const uint32_t total = uint32_t(rows * (wide ? cols * element / 16 : cols));
  const size_t x_step = size_t(images) * s.H * s.W * s.C * element, y_step = rows * s.K * element;
  for (int n = 0; n < s.N; n += images) {
    const size_t i = size_t(n / images);
    const char* xi = static_cast<const char*>(x) + i * x_step;
    if (wide) im2col<uint4>(ex, m, total, xi, matrix.data());
    else if (dtype == DType::BF16) im2col<uint16_t>(ex, m, total, xi, matrix.data());
    else im2col<float>(ex, m, total, xi, matrix.data());
    const void* ri = residual ? static_cast<const char*>(residual) + i * y_step : nullptr;
    const cublasStatus_t st = mm.launch(ex, w, matrix.data(), ri, bias, static_cast<char*>(y) + i * y_step);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
  }
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace caption::cuda
