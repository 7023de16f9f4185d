#include "kernels/preprocess.h"

#include <cstddef>

namespace caption::cpu {

// The same constants and the same float operations as the CUDA kernel, so the backends agree
// bit for bit.
void preprocess_images(const uint8_t* images, int N, int H, int W, Normalization norm, float* out) {
  const size_t pixels = size_t(N) * H * W;
  if (norm == Normalization::Caffe) {
    const float mean_bgr[3] = {103.939f, 116.779f, 123.68f};
    for (size_t i = 0; i < pixels; ++i)
      for (int c = 0; c < 3; ++c) out[3 * i + c] = float(images[3 * i + 2 - c]) - mean_bgr[c];
  } else {
    const float mean[3] = {0.485f, 0.456f, 0.406f}, stdev[3] = {0.229f, 0.224f, 0.225f};
    for (size_t i = 0; i < pixels; ++i)
      for (int c = 0; c < 3; ++c) out[3 * i + c] = (float(images[3 * i + c]) / 255.f - mean[c]) / stdev[c];
  }
}

}  // namespace caption::cpu
