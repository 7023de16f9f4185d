#include "kernels/dropout.h"
#include "kernels/launch.cuh"
#include "kernels/philox.h"
#include "runtime/cuda_check.h"

namespace caption::cuda {

namespace {

__device__ inline float masked(float x, uint32_t word, float p, float scale) {
  return philox::to_uniform(word) >= p ? x * scale : 0.f;
}

// One thread per Philox draw: draw d serves stream elements 4d..4d+3, i.e. call elements
// 4d - offset + j (philox::uniform), so the mask does not depend on the launch shape and
// matches the CPU bit for bit. Where those four are one aligned float4 (offset a multiple of 4,
// `vec`: both pointers 16-byte aligned) they move as one. Grid-stride over a 64-bit range.
__global__ void apply_mask_kernel(const float* in, float* out, size_t n, float p, float scale, uint64_t seed,
                                  uint64_t offset, const uint64_t* offset_at, bool vec) {
  if (offset_at) offset = *offset_at;
  const uint64_t first = offset / 4, draws = (offset + n - 1) / 4 - first + 1;
  vec = vec && offset % 4 == 0;
  for (uint64_t d = blockIdx.x * uint64_t(blockDim.x) + threadIdx.x; d < draws; d += uint64_t(gridDim.x) * blockDim.x) {
    const philox::Block b = philox::draw(seed, first + d);
    const int64_t i0 = int64_t((first + d) * 4 - offset);  // call element of word 0; negative at a head
    if (vec && i0 + 4 <= int64_t(n)) {
      float4 x = reinterpret_cast<const float4*>(in)[i0 / 4];
      x = make_float4(masked(x.x, b.w[0], p, scale), masked(x.y, b.w[1], p, scale), masked(x.z, b.w[2], p, scale),
                      masked(x.w, b.w[3], p, scale));
      reinterpret_cast<float4*>(out)[i0 / 4] = x;
    } else {
      for (int j = 0; j < 4; ++j)
        if (i0 + j >= 0 && i0 + j < int64_t(n)) out[i0 + j] = masked(in[i0 + j], b.w[j], p, scale);
    }
  }
}

void apply_mask(const Exec& ex, const float* in, float* out, size_t n, float p, uint64_t seed,
                uint64_t offset, const uint64_t* offset_at) {
  if (n == 0) return;
  if (p == 0.f) {
    if (out != in)
      CUDA_CHECK_THROW(cudaMemcpyAsync(out, in, n * sizeof(float), cudaMemcpyDeviceToDevice, ex.stream));
    return;
  }
  const int threads = 256;
  // Draws: n / 4 rounded up, plus one where the offset (known only on the device when offset_at
  // is given) splits the first and last.
  apply_mask_kernel<<<grid_for(n / 4 + 2, threads), threads, 0, ex.stream>>>(
      in, out, n, p, 1.0f / (1.0f - p), seed, offset, offset_at, aligned16(in) && aligned16(out));
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void dropout_forward(const Exec& ex, const float* x, float* y, size_t n, float p, uint64_t seed,
                     uint64_t offset, const uint64_t* offset_at) {
  apply_mask(ex, x, y, n, p, seed, offset, offset_at);
}

void dropout_backward(const Exec& ex, const float* dy, float* dx, size_t n, float p, uint64_t seed,
                      uint64_t offset, const uint64_t* offset_at) {
  apply_mask(ex, dy, dx, n, p, seed, offset, offset_at);
}

}  // namespace caption::cuda
