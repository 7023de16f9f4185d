#include "kernels/broadcast_add.h"

namespace caption::cpu {

void broadcast_add(const float* h, const float* a, float* out, int B, int T, int H) {
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t) {
      const size_t row = (size_t(b) * T + t) * H;
      for (int k = 0; k < H; ++k) out[row + k] = h[row + k] + a[size_t(b) * H + k];
    }
}

// Sums over t in ascending order; the CUDA kernel uses the same order, so both agree exactly.
void broadcast_add_backward(const float* dout, float* da, int B, int T, int H) {
  for (int b = 0; b < B; ++b) {
    float* dab = da + size_t(b) * H;
    for (int k = 0; k < H; ++k) dab[k] = 0.f;
    for (int t = 0; t < T; ++t) {
      const float* row = dout + (size_t(b) * T + t) * H;
      for (int k = 0; k < H; ++k) dab[k] += row[k];
    }
  }
}

}  // namespace caption::cpu
