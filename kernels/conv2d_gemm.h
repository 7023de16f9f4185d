#pragma once
// A 1x1 unpadded NHWC convolution is a matmul, y[N*P*Q, K] = x'[N*P*Q, C] w[K, C]^T, with the
// bias, the residual (as C with beta = 1) and the ReLU in cuBLASLt's epilogue (kernels/lt_matmul.h).
// x' is x itself at stride 1; at a larger stride (ResNet50's downsampling 1x1s) conv_gemm first
// copies the pixels the convolution reads together, a quarter of x at stride 2. The timed search
// of kernels/conv2d.cu weighs this route against cuDNN's algorithms, and bench/conv_algos.cu
// times it beside them. CUDA builds only.
#include <optional>

#include "kernels/conv2d.h"
#include "kernels/lt_matmul.h"

namespace caption::cuda {

// Every pointer of the route's calls is 16-byte aligned (conv2d.cu checks before it offers it).
constexpr uint32_t kConvGemmAlignment = 16;

// The matmul of s, or nothing when s is not a 1x1 unpadded NHWC convolution.
inline std::optional<LtMatmulSpec> conv_gemm_spec(const ConvShape& s, Layout layout, DType dtype, bool tf32,
                                                  bool relu, bool residual) {
  if (layout != Layout::NHWC || s.R != 1 || s.S != 1 || s.pad != 0) return std::nullopt;
  const uint32_t a = kConvGemmAlignment;
  return LtMatmulSpec{s.K, int64_t(s.N) * s.P() * s.Q(), s.C, true, dtype, tf32, relu, residual, a, a, a, a, a};
}

// Runs mm (planned from conv_gemm_spec(s, ...)) on x, w, residual (or null), bias and y of
// `dtype`: cuBLAS's status; the gather at a stride above 1 takes its scratch from ex.pool.
cublasStatus_t conv_gemm(const Exec& ex, const LtMatmul& mm, const ConvShape& s, DType dtype, const void* x,
                         const void* w, const void* residual, const void* bias, void* y);

}  // namespace caption::cuda
