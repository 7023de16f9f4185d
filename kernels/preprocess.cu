#include <stdexcept>

#include "kernels/element.cuh"
#include "kernels/launch.cuh"
#include "kernels/preprocess.h"
#include "runtime/cuda_check.h"

namespace caption::cuda {

namespace {

// One thread per pixel. The constants and float operations are those of the CPU reference (no
// multiply-add to contract), so both backends produce the same bits (bfloat16: the CPU's value
// rounded to nearest even). NCHW: channel c of pixel i of image n goes to plane (n, c);
// `plane` = H*W. Channels 3.. of `channels` are zeros.
template <class T, Normalization kNorm, Layout kLayout>
__global__ void preprocess_kernel(const uint8_t* images, T* out, size_t pixels, size_t plane, int channels) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < pixels; i += size_t(gridDim.x) * blockDim.x) {
    const uint8_t* px = images + 3 * i;
    T* o = kLayout == Layout::NHWC ? out + channels * i : out + (i / plane) * channels * plane + i % plane;
    const size_t step = kLayout == Layout::NHWC ? 1 : plane;
    for (int c = 3; c < channels; ++c) store(o[c * step], 0.f);
    if constexpr (kNorm == Normalization::Caffe) {
      store(o[0], float(px[2]) - 103.939f);
      store(o[step], float(px[1]) - 116.779f);
      store(o[2 * step], float(px[0]) - 123.68f);
    } else {
      store(o[0], (float(px[0]) / 255.f - 0.485f) / 0.229f);
      store(o[step], (float(px[1]) / 255.f - 0.456f) / 0.224f);
      store(o[2 * step], (float(px[2]) / 255.f - 0.406f) / 0.225f);
    }
  }
}

template <class T>
void preprocess(const Exec& ex, const uint8_t* images, int N, int H, int W, Normalization norm, T* out,
                Layout layout, int channels) {
  const size_t pixels = size_t(N) * H * W;
  if (pixels == 0) return;
  const int threads = 256;
  const bool caffe = norm == Normalization::Caffe, nhwc = layout == Layout::NHWC;
  auto kernel = caffe ? (nhwc ? preprocess_kernel<T, Normalization::Caffe, Layout::NHWC>
                              : preprocess_kernel<T, Normalization::Caffe, Layout::NCHW>)
                      : (nhwc ? preprocess_kernel<T, Normalization::Torch, Layout::NHWC>
                              : preprocess_kernel<T, Normalization::Torch, Layout::NCHW>);
  kernel<<<grid_for(pixels, threads), threads, 0, ex.stream>>>(images, out, pixels, size_t(H) * W, channels);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void preprocess_images(const Exec& ex, const uint8_t* images, int N, int H, int W, Normalization norm, float* out,
                       Layout layout) {
  preprocess(ex, images, N, H, W, norm, out, layout, 3);
}

void preprocess_images(const Exec& ex, const uint8_t* images, int N, int H, int W, Normalization norm, uint16_t* out,
                       Layout layout, int channels) {
  if (channels < 3) throw std::invalid_argument("preprocess_images: fewer than 3 output channels");
  preprocess(ex, images, N, H, W, norm, bf16(out), layout, channels);
}

}  // namespace caption::cuda
