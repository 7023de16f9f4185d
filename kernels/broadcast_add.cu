#include "kernels/broadcast_add.h"
#include "kernels/launch.cuh"
#include "runtime/cuda_check.h"

namespace caption::cuda {

namespace {

// Vec = float4 when H is a multiple of 4 and every pointer is 16-byte aligned (the usual
// case, H = 256), float otherwise; `Hv` is H in units of Vec.
template <class Vec>
__global__ void broadcast_add_kernel(const Vec* h, const Vec* a, Vec* out, size_t total, int T, int Hv) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const size_t row = i / Hv;  // b * T + t
    const Vec x = h[i], y = a[(row / T) * Hv + i % Hv];
    if constexpr (sizeof(Vec) == sizeof(float4)) {
      out[i] = make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
    } else {
      out[i] = x + y;
    }
  }
}

// One thread per (b, k), summing t in ascending order: coalesced across k, deterministic,
// and the same order as the CPU.
__global__ void broadcast_add_backward_kernel(const float* dout, float* da, int B, int T, int H) {
  const size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (i >= size_t(B) * H) return;
  const size_t b = i / H, k = i % H;
  const float* col = dout + b * size_t(T) * H + k;
  float s = 0.f;
  for (int t = 0; t < T; ++t) s += col[size_t(t) * H];
  da[i] = s;
}

}  // namespace

void broadcast_add(const Exec& ex, const float* h, const float* a, float* out, int B, int T, int H) {
  const size_t total = size_t(B) * T * H;
  if (total == 0) return;
  const int threads = 256;
  if (H % 4 == 0 && aligned16(h) && aligned16(a) && aligned16(out)) {
    broadcast_add_kernel<float4><<<grid_for(total / 4, threads), threads, 0, ex.stream>>>(
        reinterpret_cast<const float4*>(h), reinterpret_cast<const float4*>(a), reinterpret_cast<float4*>(out),
        total / 4, T, H / 4);
  } else {
    broadcast_add_kernel<float><<<grid_for(total, threads), threads, 0, ex.stream>>>(h, a, out, total, T, H);
  }
  CUDA_CHECK_LAUNCH();
}

void broadcast_add_backward(const Exec& ex, const float* dout, float* da, int B, int T, int H) {
  const size_t n = size_t(B) * H;
  if (n == 0) return;
  const int threads = 256;
  broadcast_add_backward_kernel<<<int((n + threads - 1) / threads), threads, 0, ex.stream>>>(dout, da, B, T, H);
  CUDA_CHECK_LAUNCH();
}

}  // namespace caption::cuda
