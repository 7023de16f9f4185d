#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/adam.h"
#include "runtime/cuda_check.h"

namespace caption::cuda {

namespace {

constexpr int kThreads = 256;
constexpr size_t kMaxBlocks = 4096;  // grid-stride beyond this: enough blocks to fill any GPU

struct AdamScalars {
  float b1, b2, one_minus_b1, one_minus_b2, eps, wd, step_size, bc2_sqrt;
};

__device__ __forceinline__ void update(float& p, float g, float& m, float& v, const AdamScalars& a) {
  if (a.wd != 0.f) g += a.wd * p;
  m = a.b1 * m + a.one_minus_b1 * g;
  v = a.b2 * v + a.one_minus_b2 * g * g;
  p -= a.step_size * (m / (sqrtf(v) / a.bc2_sqrt + a.eps));
}

// Elements [head, head + 4*nvec) go as float4, the rest (head and tail) one by one; all four
// buffers share their offset within 16 bytes, so the same split aligns every one of them.
__global__ void adam_kernel(float* __restrict__ params, const float* __restrict__ grads, float* __restrict__ m,
                            float* __restrict__ v, size_t n, size_t head, size_t nvec, AdamScalars a) {
  size_t stride = size_t(gridDim.x) * blockDim.x;
  size_t tid = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  float4* p4 = reinterpret_cast<float4*>(params + head);
  const float4* g4 = reinterpret_cast<const float4*>(grads + head);
  float4* m4 = reinterpret_cast<float4*>(m + head);
  float4* v4 = reinterpret_cast<float4*>(v + head);
  for (size_t i = tid; i < nvec; i += stride) {
    float4 p = p4[i], g = g4[i], mm = m4[i], vv = v4[i];
    update(p.x, g.x, mm.x, vv.x, a);
    update(p.y, g.y, mm.y, vv.y, a);
    update(p.z, g.z, mm.z, vv.z, a);
    update(p.w, g.w, mm.w, vv.w, a);
    p4[i] = p, m4[i] = mm, v4[i] = vv;
  }
  size_t body_end = head + 4 * nvec, scalars = n - 4 * nvec;
  for (size_t j = tid; j < scalars; j += stride) {
    size_t i = j < head ? j : body_end + (j - head);
    update(params[i], grads[i], m[i], v[i], a);
  }
}

}  // namespace

void adam_step(const Exec& ex, float* params, const float* grads, float* m, float* v, size_t n,
               const AdamConfig& cfg, long step) {
  if (n == 0) return;
  // Bias corrections in double and then rounded once, as torch does with Python floats.
  double bc1 = 1.0 - std::pow(double(cfg.beta1), double(step));
  double bc2 = 1.0 - std::pow(double(cfg.beta2), double(step));
  AdamScalars a{cfg.beta1, cfg.beta2, float(1.0 - cfg.beta1), float(1.0 - cfg.beta2), cfg.eps, cfg.weight_decay,
                float(cfg.lr / bc1), float(std::sqrt(bc2))};

  auto offset = [](const void* p) { return reinterpret_cast<uintptr_t>(p) & 15; };
  size_t head = n, nvec = 0;  // unequal offsets: all scalar
  if (offset(params) == offset(grads) && offset(params) == offset(m) && offset(params) == offset(v)) {
    head = std::min(n, ((16 - offset(params)) & 15) / sizeof(float));
    nvec = (n - head) / 4;
  }
  size_t work = std::max(nvec, n - 4 * nvec);
  size_t blocks = std::min(kMaxBlocks, (work + kThreads - 1) / kThreads);
  adam_kernel<<<unsigned(blocks), kThreads, 0, ex.stream>>>(params, grads, m, v, n, head, nvec, a);
  CUDA_CHECK_LAUNCH();
}

}  // namespace caption::cuda
