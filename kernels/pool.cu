#include <cstdint>

#include "kernels/element.cuh"
#include "kernels/launch.cuh"
#include "kernels/pool.h"
#include "runtime/cuda_check.h"

namespace caption::cuda {

namespace {

// One thread per output element, in memory order: consecutive threads read consecutive channels
// (NHWC) or pixels (NCHW) of each window tap. Out-of-bounds taps are skipped, as -inf padding
// would be. T: float or bfloat16 (the max of bfloat16 values is one of them: exact).
template <class T, Layout kLayout>
__global__ void maxpool_kernel(const T* x, T* y, int N, int H, int W, int C, int k, int stride, int pad,
                               int P, int Q) {
  const size_t total = size_t(N) * P * Q * C;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    int c, p, q;
    size_t n;
    if constexpr (kLayout == Layout::NHWC) {
      c = int(i % C);
      const size_t pix = i / C;
      q = int(pix % Q), p = int(pix / Q % P);
      n = pix / (size_t(P) * Q);
    } else {
      q = int(i % Q), p = int(i / Q % P);
      const size_t nc = i / (size_t(P) * Q);
      c = int(nc % C), n = nc / C;
    }
    float m = -INFINITY;
    for (int a = 0; a < k; ++a) {
      const int h = p * stride - pad + a;
      if (h < 0 || h >= H) continue;
      for (int b = 0; b < k; ++b) {
        const int w = q * stride - pad + b;
        if (w < 0 || w >= W) continue;
        m = fmaxf(m, widen(x[layout_offset(kLayout, n, c, h, w, C, H, W)]));
      }
    }
    store(y[i], m);
  }
}

// One thread per (image, channel), summing pixels in ascending order like the CPU reference, so
// the two agree exactly; NHWC reads are coalesced across channels (NCHW ones are not, but the
// last stage is 7x7 or 14x14 pixels: a few microseconds). x float or bfloat16, summed in FP32.
template <class T, Layout kLayout>
__global__ void global_avgpool_kernel(const T* x, float* y, int N, int HW, int C) {
  const size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (i >= size_t(N) * C) return;
  const size_t n = i / C, c = i % C;
  const T* in = kLayout == Layout::NHWC ? x + n * HW * C + c : x + i * HW;
  const size_t step = kLayout == Layout::NHWC ? size_t(C) : 1;
  float s = 0.f;
  for (int j = 0; j < HW; ++j) s += widen(in[j * step]);
  y[i] = s / float(HW);
}

template <class T>
void maxpool(const Exec& ex, const PoolShape& s, const T* x, T* y) {
  const size_t total = size_t(s.N) * s.P() * s.Q() * s.C;
  if (total == 0) return;
  const int threads = 256;
  auto kernel = s.layout == Layout::NHWC ? maxpool_kernel<T, Layout::NHWC> : maxpool_kernel<T, Layout::NCHW>;
  kernel<<<grid_for(total, threads), threads, 0, ex.stream>>>(x, y, s.N, s.H, s.W, s.C, s.k, s.stride, s.pad, s.P(),
                                                              s.Q());
  CUDA_CHECK_LAUNCH();
}

template <class T>
void avgpool(const Exec& ex, int N, int H, int W, int C, const T* x, float* y, Layout layout) {
  const size_t total = size_t(N) * C;
  if (total == 0) return;
  const int threads = 256;
  auto kernel =
      layout == Layout::NHWC ? global_avgpool_kernel<T, Layout::NHWC> : global_avgpool_kernel<T, Layout::NCHW>;
  kernel<<<int((total + threads - 1) / threads), threads, 0, ex.stream>>>(x, y, N, H * W, C);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void maxpool2d(const Exec& ex, const PoolShape& s, const float* x, float* y) { maxpool(ex, s, x, y); }
void maxpool2d(const Exec& ex, const PoolShape& s, const uint16_t* x, uint16_t* y) {
  maxpool(ex, s, bf16(x), bf16(y));
}

void global_avgpool(const Exec& ex, int N, int H, int W, int C, const float* x, float* y, Layout layout) {
  avgpool(ex, N, H, W, C, x, y, layout);
}
void global_avgpool(const Exec& ex, int N, int H, int W, int C, const uint16_t* x, float* y, Layout layout) {
  avgpool(ex, N, H, W, C, bf16(x), y, layout);
}

}  // namespace caption::cuda
