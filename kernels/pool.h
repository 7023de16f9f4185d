#pragma once
// Pooling: ResNet's 3x3/2 max pool after conv1 and the global average pool that turns the last
// stage into the image feature. NHWC; NCHW too on CUDA (kernels/layout.h).
#include <cstdint>
#include <stdexcept>

#include "kernels/layout.h"
#include "runtime/exec.h"

namespace caption {

struct PoolShape {
  int N, H, W, C;
  int k, stride, pad;  // max pool window; padding never wins (acts as -inf)
  Layout layout = Layout::NHWC;
  int P() const { return (H + 2 * pad - k) / stride + 1; }
  int Q() const { return (W + 2 * pad - k) / stride + 1; }
};

namespace cpu {
void maxpool2d(const PoolShape& s, const float* x, float* y);           // NHWC: y [N,P,Q,C]
void global_avgpool(int N, int H, int W, int C, const float* x, float* y);  // NHWC: y [N,C]
}  // namespace cpu
namespace cuda {
void maxpool2d(const Exec& ex, const PoolShape& s, const float* x, float* y);
void global_avgpool(const Exec& ex, int N, int H, int W, int C, const float* x, float* y, Layout layout);
// bfloat16 activations (bits, runtime/tensor.h); the average is summed in FP32 and written FP32.
void maxpool2d(const Exec& ex, const PoolShape& s, const uint16_t* x, uint16_t* y);
void global_avgpool(const Exec& ex, int N, int H, int W, int C, const uint16_t* x, float* y, Layout layout);
}  // namespace cuda

inline void check_cpu_layout(Layout layout) {
  if (layout != Layout::NHWC) throw std::invalid_argument("pooling: the CPU reference is NHWC only");
}
inline void maxpool2d(const Exec& ex, const PoolShape& s, const float* x, float* y) {
  if (ex.cuda()) CAPTION_CUDA_CALL(cuda::maxpool2d(ex, s, x, y));
  else check_cpu_layout(s.layout), cpu::maxpool2d(s, x, y);
}
inline void global_avgpool(const Exec& ex, int N, int H, int W, int C, const float* x, float* y,
                           Layout layout = Layout::NHWC) {
  if (ex.cuda()) CAPTION_CUDA_CALL(cuda::global_avgpool(ex, N, H, W, C, x, y, layout));
  else check_cpu_layout(layout), cpu::global_avgpool(N, H, W, C, x, y);
}
inline void check_cuda_for_bf16(const Exec& ex) {
  if (!ex.cuda()) throw std::invalid_argument("pooling: bfloat16 runs on CUDA only");
}
inline void maxpool2d(const Exec& ex, const PoolShape& s, const uint16_t* x, uint16_t* y) {
  check_cuda_for_bf16(ex);
  CAPTION_CUDA_CALL(cuda::maxpool2d(ex, s, x, y));
}
inline void global_avgpool(const Exec& ex, int N, int H, int W, int C, const uint16_t* x, float* y, Layout layout) {
  check_cuda_for_bf16(ex);
  CAPTION_CUDA_CALL(cuda::global_avgpool(ex, N, H, W, C, x, y, layout));
}

}  // namespace caption
