#include "kernels/dropout.h"
#include "kernels/launch.cuh"
#include "kernels/philox.h"
#include "runtime/cuda_check.h"

namespace caption::cuda {

namespace {

// One Philox draw per element (counter offset + i), so the mask does not depend on the
// launch shape and matches the CPU bit for bit. Grid-stride over a 64-bit range.
__global__ void apply_mask_kernel(const float* in, float* out, size_t n, float p, float scale,
                                  uint64_t seed, uint64_t offset, const uint64_t* offset_at) {
  if (offset_at) offset = *offset_at;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    out[i] = philox::uniform(seed, offset + i) >= p ? in[i] * scale : 0.f;
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
  apply_mask_kernel<<<grid_for(n, threads), threads, 0, ex.stream>>>(in, out, n, p, 1.0f / (1.0f - p), seed, offset,
                                                     offset_at);
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
