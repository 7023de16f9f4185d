#pragma once
// Adam with torch.optim.Adam semantics (L2 weight decay added to the gradient, bias
// correction, eps outside the square root). The model's parameters, gradients and both
// moments each live in one flat buffer with the same layout, so one fused kernel launch
// updates every parameter tensor at once; the moments stay in device memory.
#include <cstddef>

#include "runtime/exec.h"

namespace caption {

struct AdamConfig {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.f;
};

// step counts from 1 (the step being taken). m and v start at zero.
namespace cpu {
void adam_step(float* params, const float* grads, float* m, float* v, size_t n, const AdamConfig& cfg, long step);
}
namespace cuda {
void adam_step(const Exec& ex, float* params, const float* grads, float* m, float* v, size_t n,
               const AdamConfig& cfg, long step);
}

inline void adam_step(const Exec& ex, float* params, const float* grads, float* m, float* v, size_t n,
                      const AdamConfig& cfg, long step) {
  if (ex.cuda()) CAPTION_CUDA_CALL(cuda::adam_step(ex, params, grads, m, v, n, cfg, step));
  else cpu::adam_step(params, grads, m, v, n, cfg, step);
}

}  // namespace caption
