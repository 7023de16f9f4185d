#pragma once
// A 1x1 stride-1 NHWC convolution is a matmul, y[N*H*W, K] = x[N*H*W, C] w[K, C]^T, with the
// bias, the residual (as C with beta = 1) and the ReLU in cuBLASLt's epilogue (kernels/lt_matmul.h).
// The timed search of kernels/conv2d.cu weighs this route against cuDNN's algorithms, and
// bench/conv_algos.cu times it beside them. CUDA builds only.
#include <optional>

#include "kernels/conv2d.h"
#include "kernels/lt_matmul.h"

namespace caption::cuda {

// Every pointer of the route's calls is 16-byte aligned (conv2d.cu checks before it offers it).
constexpr uint32_t kConvGemmAlignment = 16;

// The matmul of s, or nothing when s is not a 1x1 stride-1 unpadded NHWC convolution. Its run()
// takes (w, x, residual, bias, y): A = w, B = x, C = residual, D = y.
inline std::optional<LtMatmulSpec> conv_gemm_spec(const ConvShape& s, Layout layout, DType dtype, bool tf32,
                                                  bool relu, bool residual) {
  if (layout != Layout::NHWC || s.R != 1 || s.S != 1 || s.stride != 1 || s.pad != 0) return std::nullopt;
  const uint32_t a = kConvGemmAlignment;
  return LtMatmulSpec{s.K, int64_t(s.N) * s.H * s.W, s.C, true, dtype, tf32, relu, residual, a, a, a, a, a};
}

}  // namespace caption::cuda
