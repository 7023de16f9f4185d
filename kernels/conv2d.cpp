#include "kernels/conv2d.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "kernels/gemm.h"

namespace caption::cpu {

namespace {

// im2col buffers never exceed this, however large the batch.
constexpr size_t kIm2colBytes = size_t(64) << 20;
// Output rows per GEMM: enough that repacking the weights once per chunk costs nothing next to the
// product (the 3x3x512x512 filters are 9 MB), few enough that the chunk's output is still in the
// last-level cache when the epilogue reads it back.
constexpr int64_t kChunkRows = 2048;

// Rows [m0, m0 + rows) of the im2col matrix: row (n,p,q) holds the receptive field of output pixel
// (p,q) of image n in (r,s,c) order, matching the KRSC weights; padding contributes zeros. For a fixed
// r the valid s are one contiguous run of input columns, so each (row, r) is one copy.
void im2col(const ConvShape& s, const float* x, int64_t m0, int64_t rows, float* a) {
  const int P = s.P(), Q = s.Q();
  const size_t C = size_t(s.C), SC = size_t(s.S) * C;
  for (int64_t m = m0; m < m0 + rows; ++m, a += s.R * SC) {
    const int q = int(m % Q), p = int(m / Q % P);
    const int64_t n = m / (int64_t(P) * Q);
    const int w0 = q * s.stride - s.pad;
    const int s_lo = std::max(0, -w0), s_hi = std::min(s.S, s.W - w0);  // valid s in [s_lo, s_hi)
    for (int r = 0; r < s.R; ++r) {
      float* dst = a + r * SC;
      const int h = p * s.stride - s.pad + r;
      if (h < 0 || h >= s.H || s_lo >= s_hi) {
        std::fill(dst, dst + SC, 0.f);
        continue;
      }
      std::fill(dst, dst + s_lo * C, 0.f);
      const float* src = x + ((n * s.H + h) * s.W + w0 + s_lo) * C;
      std::memcpy(dst + s_lo * C, src, (s_hi - s_lo) * C * sizeof(float));
      std::fill(dst + s_hi * C, dst + SC, 0.f);
    }
  }
}

// y = act(y + bias [+ residual]) over `rows` rows of K; one branch-free loop per case so that each
// vectorises.
void epilogue(const ConvParams& p, int64_t rows, int K, const float* res, float* y) {
  const float* b = p.bias;
  for (int64_t m = 0; m < rows; ++m, y += K) {
    if (res) {
      const float* rr = res + m * K;
      if (p.relu)
        for (int k = 0; k < K; ++k) y[k] = std::max(y[k] + b[k] + rr[k], 0.f);
      else
        for (int k = 0; k < K; ++k) y[k] = y[k] + b[k] + rr[k];
    } else {
      if (p.relu)
        for (int k = 0; k < K; ++k) y[k] = std::max(y[k] + b[k], 0.f);
      else
        for (int k = 0; k < K; ++k) y[k] = y[k] + b[k];
    }
  }
}

}  // namespace

// y[N*P*Q, K] = A[N*P*Q, R*S*C] * W[K, R*S*C]^T, chunked over output rows, each chunk followed by
// its epilogue. A 1x1 stride-1 unpadded convolution needs no im2col: x already is A.
void conv2d(const ConvShape& s, const float* x, const ConvParams& p, float* y) {
  const int64_t M = int64_t(s.N) * s.P() * s.Q();
  const int K = s.K, KD = s.R * s.S * s.C;
  if (p.layout != Layout::NHWC) throw std::invalid_argument("conv2d: the CPU reference is NHWC only");
  if (M <= 0 || K <= 0) return;
  const bool direct = s.R == 1 && s.S == 1 && s.stride == 1 && s.pad == 0;
  int64_t chunk = std::min(M, kChunkRows);
  // One im2col buffer per thread, kept between calls: a fresh multi-megabyte allocation would be
  // page-faulted in (and zeroed by the kernel) on every layer.
  thread_local std::vector<float> a;
  if (!direct) {
    chunk = std::max<int64_t>(1, std::min<int64_t>(chunk, kIm2colBytes / (sizeof(float) * KD)));
    if (a.size() < size_t(chunk) * KD) a.resize(size_t(chunk) * KD);
  }
  for (int64_t m0 = 0; m0 < M; m0 += chunk) {
    const int64_t rows = std::min(chunk, M - m0);
    const float* am = x + m0 * KD;
    if (!direct) {
      im2col(s, x, m0, rows, a.data());
      am = a.data();
    }
    gemm(Trans::N, Trans::T, int(rows), K, KD, 1.f, am, KD, p.w, KD, 0.f, y + m0 * K, K);
    epilogue(p, rows, K, p.residual ? p.residual + m0 * K : nullptr, y + m0 * K);
  }
}

}  // namespace caption::cpu
