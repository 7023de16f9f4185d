#include "kernels/adam.h"

#include <cmath>

namespace caption::cpu {

void adam_step(float* params, const float* grads, float* m, float* v, size_t n, const AdamConfig& cfg, long step) {
  // Bias corrections in double and then rounded once, as torch does with Python floats.
  double bc1 = 1.0 - std::pow(double(cfg.beta1), double(step));
  double bc2 = 1.0 - std::pow(double(cfg.beta2), double(step));
  const float step_size = float(cfg.lr / bc1);
  const float bc2_sqrt = float(std::sqrt(bc2));
  const float b1 = cfg.beta1, b2 = cfg.beta2, wd = cfg.weight_decay, eps = cfg.eps;
  const float one_minus_b1 = float(1.0 - cfg.beta1), one_minus_b2 = float(1.0 - cfg.beta2);
  for (size_t i = 0; i < n; ++i) {
    float g = grads[i];
    if (wd != 0.f) g += wd * params[i];
    m[i] = b1 * m[i] + one_minus_b1 * g;
    v[i] = b2 * v[i] + one_minus_b2 * g * g;
    float denom = std::sqrt(v[i]) / bc2_sqrt + eps;
    params[i] -= step_size * (m[i] / denom);
  }
}

}  // namespace caption::cpu
