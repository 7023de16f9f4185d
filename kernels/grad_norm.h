#pragma once
// Global L2 norm of the flat gradient buffer and optional clipping to a maximum norm
// (torch.nn.utils.clip_grad_norm_: coefficient max_norm / (norm + 1e-6), applied if < 1).
// The reduction is deterministic (fixed tree order) on both backends.
#include <cstddef>

#include "runtime/exec.h"

namespace caption {

namespace cpu {
float global_norm(const float* x, size_t n);
void scale(float* x, size_t n, float s);
}  // namespace cpu
namespace cuda {
float global_norm(const Exec& ex, const float* x, size_t n);  // waits for the result
void scale(const Exec& ex, float* x, size_t n, float s);
}  // namespace cuda

inline float global_norm(const Exec& ex, const float* x, size_t n) {
  if (ex.cuda()) CAPTION_CUDA_CALL(return cuda::global_norm(ex, x, n));
  return cpu::global_norm(x, n);
}
inline void scale(const Exec& ex, float* x, size_t n, float s) {
  if (ex.cuda()) CAPTION_CUDA_CALL(cuda::scale(ex, x, n, s));
  else cpu::scale(x, n, s);
}

// Returns the norm before clipping; max_norm <= 0 means no clipping.
inline float clip_grad_norm(const Exec& ex, float* grads, size_t n, float max_norm) {
  float norm = global_norm(ex, grads, n);
  if (max_norm > 0) {
    float coef = max_norm / (norm + 1e-6f);
    if (coef < 1.f) scale(ex, grads, n, coef);
  }
  return norm;
}

}  // namespace caption
