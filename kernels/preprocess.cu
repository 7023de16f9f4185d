#include <algorithm>

#include "kernels/preprocess.h"
#include "runtime/cuda_check.h"

namespace caption::cuda {

namespace {

// One thread per pixel. The constants and float operations are those of the CPU reference (no
// multiply-add to contract), so both backends produce the same bits.
template <Normalization kNorm>
__global__ void preprocess_kernel(const uint8_t* images, float* out, size_t pixels) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < pixels; i += size_t(gridDim.x) * blockDim.x) {
    const uint8_t* px = images + 3 * i;
    float* o = out + 3 * i;
    if constexpr (kNorm == Normalization::Caffe) {
      o[0] = float(px[2]) - 103.939f;
      o[1] = float(px[1]) - 116.779f;
      o[2] = float(px[0]) - 123.68f;
    } else {
      o[0] = (float(px[0]) / 255.f - 0.485f) / 0.229f;
      o[1] = (float(px[1]) / 255.f - 0.456f) / 0.224f;
      o[2] = (float(px[2]) / 255.f - 0.406f) / 0.225f;
    }
  }
}

}  // namespace

void preprocess_images(const Exec& ex, const uint8_t* images, int N, int H, int W, Normalization norm, float* out) {
  const size_t pixels = size_t(N) * H * W;
  if (pixels == 0) return;
  const int threads = 256;
  const int blocks = int(std::min<size_t>((pixels + threads - 1) / threads, 65536));
  if (norm == Normalization::Caffe)
    preprocess_kernel<Normalization::Caffe><<<blocks, threads, 0, ex.stream>>>(images, out, pixels);
  else
    preprocess_kernel<Normalization::Torch><<<blocks, threads, 0, ex.stream>>>(images, out, pixels);
  CUDA_CHECK_LAUNCH();
}

}  // namespace caption::cuda
