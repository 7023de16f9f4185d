#pragma once
// An NHWC convolution is a matmul over its im2col matrix: y[N*P*Q, K] = cols[N*P*Q, R*S*C]
// w[K, R*S*C]^T, row (n, p, q) of cols being the window output pixel (n, p, q) reads, in the (r, s, c)
// order of a KRSC filter's row. The bias, the residual (as C with beta = 1) and the ReLU go in
// cuBLASLt's epilogue (kernels/lt_matmul.h). A 1x1 unpadded stride-1 convolution reads x itself
// as cols; any other shape first gathers cols into pool scratch, a few images at a time so that
// the scratch stays under kMaxConvGemmScratch. On an H200 cuBLAS's FP32 SGEMM ran at 2.4-3.8x the
// rate of cuDNN's FP32 3x3 convolutions (bench/results), a margin meant to pay for the gather
// (9x the input for a 3x3); the timed search measures whether it does.
// The timed search of kernels/conv2d.cu weighs this route against cuDNN's algorithms, and
// bench/conv_algos.cu times it beside them.
#include <cstddef>
#include <cstdint>
#include <optional>

#include "kernels/conv2d.h"
#include "kernels/lt_matmul.h"

#ifdef __CUDACC__
#define CAPTION_IM2COL_FN __host__ __device__ __forceinline__
#else
#define CAPTION_IM2COL_FN inline
#endif

namespace caption::cuda {

// Every pointer of the route's calls is 16-byte aligned (conv2d.cu checks before it offers it).
constexpr uint32_t kConvGemmAlignment = 16;
// The gathered matrix of one matmul call stays under this (one image's, if that is more).
constexpr size_t kMaxConvGemmScratch = size_t(256) << 20;

// Where element (row, col) of the im2col matrix of images [n0, ...) comes from: its offset in
// x (from image n0), or -1 where the window hangs over the border (a zero). Counted in units of
// `lanes` channels (C % lanes == 0), so that the gather can move 16 bytes at a time; shared by
// the CUDA gather and the CPU test of its indexing.
struct Im2col {
  int H, W, C, P, Q, R, S, stride, pad;  // C in units

  Im2col(const ConvShape& s, int lanes)
      : H(s.H), W(s.W), C(s.C / lanes), P(s.P()), Q(s.Q()), R(s.R), S(s.S), stride(s.stride), pad(s.pad) {}
  CAPTION_IM2COL_FN uint32_t cols() const { return uint32_t(R) * S * C; }
  CAPTION_IM2COL_FN int64_t source(uint32_t row, uint32_t col) const {
    const uint32_t c = col % C, rs = col / C, q = row % Q, np = row / Q;
    const int y = int(np % P) * stride - pad + int(rs / S), x = int(q) * stride - pad + int(rs % S);
    if (y < 0 || y >= H || x < 0 || x >= W) return -1;
    return ((int64_t(np / P) * H + y) * W + x) * C + c;
  }
};

// Whether the route reads x as it is (1x1, stride 1, no padding): no gather, one matmul call.
inline bool conv_gemm_direct(const ConvShape& s) { return s.R == 1 && s.S == 1 && s.stride == 1 && s.pad == 0; }

// Images per matmul call: all of them when x is read directly; otherwise the most that divides
// N and keeps the gathered matrix under kMaxConvGemmScratch (all of them when K leaves the next
// call's y misaligned), so that every call is the one planned matmul.
inline int conv_gemm_images(const ConvShape& s, DType dtype) {
  if (conv_gemm_direct(s) || size_t(s.K) * dtype_size(dtype) % kConvGemmAlignment != 0) return s.N;
  const size_t per_image = size_t(s.P()) * s.Q() * s.R * s.S * s.C * dtype_size(dtype);
  for (int images = s.N; images > 1; --images)
    if (s.N % images == 0 && images * per_image <= kMaxConvGemmScratch) return images;
  return 1;
}

// The matmul of one call for s, or nothing when s is not NHWC.
inline std::optional<LtMatmulSpec> conv_gemm_spec(const ConvShape& s, Layout layout, DType dtype, bool tf32,
                                                  bool relu, bool residual) {
  if (layout != Layout::NHWC) return std::nullopt;
  const uint32_t a = kConvGemmAlignment;
  return LtMatmulSpec{s.K, int64_t(conv_gemm_images(s, dtype)) * s.P() * s.Q(), int64_t(s.R) * s.S * s.C, true,
                      dtype, tf32, relu, residual, a, a, a, a, a};
}

// Pool scratch a call takes besides cuBLASLt's workspace: the gathered matrix, in bytes.
inline size_t conv_gemm_scratch(const ConvShape& s, DType dtype) {
  if (conv_gemm_direct(s)) return 0;
  return size_t(conv_gemm_images(s, dtype)) * s.P() * s.Q() * s.R * s.S * s.C * dtype_size(dtype);
}

// Runs mm (planned from conv_gemm_spec(s, ...)) on x, w, residual (or null), bias and y of
// `dtype`: cuBLAS's status (the first call's that fails).
cublasStatus_t conv_gemm(const Exec& ex, const LtMatmul& mm, const ConvShape& s, DType dtype, const void* x,
                         const void* w, const void* residual, const void* bias, void* y);

}  // namespace caption::cuda
