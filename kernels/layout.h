#pragma once
#include <cstddef>

// Memory order of the encoder's activations on CUDA. NHWC is the engine's layout and the only
// one of the CPU kernels (their register tiles want channels innermost); NCHW is offered on CUDA
// because cuDNN's FP32 (no tensor core) kernels are tuned for it: on an H200 PyTorch's NCHW 1x1
// convolutions ran 2-4x faster than the engine's NHWC ones (README, Performance).
namespace caption {

enum class Layout { NHWC, NCHW };

inline const char* layout_name(Layout l) { return l == Layout::NHWC ? "nhwc" : "nchw"; }

// Where element (n, c, h, w) of a 4-D tensor with C channels of H x W lies in `l` order (also
// convolution weights: n = output channel, h and w = kernel row and column; NHWC is then KRSC).
// Host and device.
#ifdef __CUDACC__
__host__ __device__
#endif
inline size_t layout_offset(Layout l, size_t n, size_t c, size_t h, size_t w, size_t C, size_t H, size_t W) {
  return l == Layout::NHWC ? ((n * H + h) * W + w) * C + c : ((n * C + c) * H + h) * W + w;
}

}  // namespace caption
