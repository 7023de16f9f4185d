#include "kernels/adam.h"

#include <algorithm>
#include <cmath>

#include "kernels/parallel.h"
#include "kernels/vec_math.h"

namespace caption::cpu {

namespace {

using vec::kLanes;
using vec::vf;

// Elements per parallel work item, and the size below which one thread does the whole update
// (about 80 us: waking a worker costs tens of microseconds). Elements are independent: the
// split changes no result.
constexpr size_t kChunk = 16384;
constexpr size_t kParallelMin = 65536;

struct AdamCoef {
  float step_size, bc2_sqrt, b1, b2, one_minus_b1, one_minus_b2, wd, eps;
};

// One update, written once for float and for vectors: the same float operations in the
// same order either way (sqrt is correctly rounded in both), so a lane's result does not
// depend on whether its element went through the vector body or the scalar tail.
template <class T, class Sqrt>
inline void update(T& p, T g, T& m, T& v, const AdamCoef& c, Sqrt sqrt) {
  if (c.wd != 0.f) g += c.wd * p;
  m = c.b1 * m + c.one_minus_b1 * g;
  v = c.b2 * v + c.one_minus_b2 * g * g;
  T denom = sqrt(v) / c.bc2_sqrt + c.eps;
  p -= c.step_size * (m / denom);
}

void adam_range(float* params, const float* grads, float* m, float* v, size_t begin, size_t end,
                const AdamCoef& c) {
  size_t i = begin;
  for (; i + kLanes <= end; i += kLanes) {
    vf p = vec::load(params + i), mi = vec::load(m + i), vi = vec::load(v + i);
    update(p, vec::load(grads + i), mi, vi, c, vec::sqrt);
    vec::store(params + i, p), vec::store(m + i, mi), vec::store(v + i, vi);
  }
  for (; i < end; ++i) update(params[i], grads[i], m[i], v[i], c, [](float x) { return std::sqrt(x); });
}

}  // namespace

void adam_step(float* params, const float* grads, float* m, float* v, size_t n, const AdamConfig& cfg, long step) {
  // Bias corrections in double and then rounded once, as torch does with Python floats.
  double bc1 = 1.0 - std::pow(double(cfg.beta1), double(step));
  double bc2 = 1.0 - std::pow(double(cfg.beta2), double(step));
  const AdamCoef c{float(cfg.lr / bc1),    float(std::sqrt(bc2)),  cfg.beta1,        cfg.beta2,
                   float(1.0 - cfg.beta1), float(1.0 - cfg.beta2), cfg.weight_decay, cfg.eps};
  const size_t chunks = (n + kChunk - 1) / kChunk;
  parallel_for(chunks, n >= kParallelMin,
               [&](size_t k) { adam_range(params, grads, m, v, k * kChunk, std::min(n, (k + 1) * kChunk), c); });
}

}  // namespace caption::cpu
