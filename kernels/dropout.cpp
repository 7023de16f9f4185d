#include "kernels/dropout.h"

#include <cstring>

#include "kernels/philox.h"

namespace caption::cpu {

namespace {
// Forward and backward are the same map: keep-and-scale or zero, from the recomputed mask.
void apply_mask(const float* in, float* out, size_t n, float p, uint64_t seed, uint64_t offset) {
  if (p == 0.f) {
    if (out != in) std::memmove(out, in, n * sizeof(float));
    return;
  }
  const float scale = 1.0f / (1.0f - p);
  for (size_t i = 0; i < n; ++i)
    out[i] = philox::uniform(seed, offset + i) >= p ? in[i] * scale : 0.f;
}
}  // namespace

void dropout_forward(const float* x, float* y, size_t n, float p, uint64_t seed, uint64_t offset) {
  apply_mask(x, y, n, p, seed, offset);
}

void dropout_backward(const float* dy, float* dx, size_t n, float p, uint64_t seed, uint64_t offset) {
  apply_mask(dy, dx, n, p, seed, offset);
}

}  // namespace caption::cpu
