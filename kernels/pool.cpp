#include "kernels/pool.h"

#include <algorithm>
#include <cstddef>
#include <limits>

namespace caption::cpu {

// Each output pixel takes the running max over its in-bounds window taps, a whole C-vector at a
// time; out-of-bounds taps are skipped, which is what -inf padding amounts to.
void maxpool2d(const PoolShape& s, const float* x, float* y) {
  const int P = s.P(), Q = s.Q();
  const size_t C = size_t(s.C);
  for (int n = 0; n < s.N; ++n)
    for (int p = 0; p < P; ++p)
      for (int q = 0; q < Q; ++q) {
        float* out = y + ((size_t(n) * P + p) * Q + q) * C;
        std::fill(out, out + C, -std::numeric_limits<float>::infinity());
        for (int i = 0; i < s.k; ++i) {
          const int h = p * s.stride - s.pad + i;
          if (h < 0 || h >= s.H) continue;
          for (int j = 0; j < s.k; ++j) {
            const int w = q * s.stride - s.pad + j;
            if (w < 0 || w >= s.W) continue;
            const float* in = x + ((size_t(n) * s.H + h) * s.W + w) * C;
            for (size_t c = 0; c < C; ++c) out[c] = std::max(out[c], in[c]);
          }
        }
      }
}

// Sums pixels in ascending h*W+w order per channel, then divides: the CUDA kernel uses the same
// order, so both backends give identical features.
void global_avgpool(int N, int H, int W, int C, const float* x, float* y) {
  const size_t HW = size_t(H) * W;
  for (int n = 0; n < N; ++n) {
    float* out = y + size_t(n) * C;
    const float* in = x + size_t(n) * HW * C;
    std::fill(out, out + C, 0.f);
    for (size_t i = 0; i < HW; ++i, in += C)
      for (int c = 0; c < C; ++c) out[c] += in[c];
    for (int c = 0; c < C; ++c) out[c] /= float(HW);
  }
}

}  // namespace caption::cpu
