#pragma once
// uint8 RGB images [N,H,W,3] -> normalised float NHWC [N,H,W,3] (or NCHW [N,3,H,W], CUDA only),
// the network's input.
//   Caffe (Keras ResNet50 preprocess_input): channels reordered to BGR, minus [103.939, 116.779, 123.68]
//   (B, G, R means), no scaling.
//   Torch (torchvision): RGB, (x/255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225].
#include <cstdint>
#include <stdexcept>

#include "kernels/layout.h"
#include "runtime/exec.h"

namespace caption {

enum class Normalization { Caffe, Torch };

namespace cpu {
void preprocess_images(const uint8_t* images, int N, int H, int W, Normalization norm, float* out);
}
namespace cuda {
// `images` is device memory (uploaded from pinned host buffers by the caller).
void preprocess_images(const Exec& ex, const uint8_t* images, int N, int H, int W, Normalization norm, float* out,
                       Layout layout);
// bfloat16 output (bits, runtime/tensor.h): the FP32 values rounded to nearest even, in
// `channels` >= 3 channels, the ones past the third zero (8 make a pixel one 16-byte vector, the
// shape tensor-core convolutions want).
void preprocess_images(const Exec& ex, const uint8_t* images, int N, int H, int W, Normalization norm, uint16_t* out,
                       Layout layout, int channels);
}

inline void preprocess_images(const Exec& ex, const uint8_t* images, int N, int H, int W, Normalization norm,
                              float* out, Layout layout = Layout::NHWC) {
  if (ex.cuda()) {
    CAPTION_CUDA_CALL(cuda::preprocess_images(ex, images, N, H, W, norm, out, layout));
  } else {
    if (layout != Layout::NHWC) throw std::invalid_argument("preprocess_images: the CPU reference is NHWC only");
    cpu::preprocess_images(images, N, H, W, norm, out);
  }
}
inline void preprocess_images(const Exec& ex, const uint8_t* images, int N, int H, int W, Normalization norm,
                              uint16_t* out, Layout layout, int channels) {
  if (!ex.cuda()) throw std::invalid_argument("preprocess_images: bfloat16 runs on CUDA only");
  CAPTION_CUDA_CALL(cuda::preprocess_images(ex, images, N, H, W, norm, out, layout, channels));
}

}  // namespace caption
