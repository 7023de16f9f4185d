#pragma once
// Pooling in NHWC: ResNet's 3x3/2 max pool after conv1 and the global average pool that
// turns the last stage into the image feature.
#include "runtime/exec.h"

namespace caption {

struct PoolShape {
  int N, H, W, C;
  int k, stride, pad;  // max pool window; padding never wins (acts as -inf)
  int P() const { return (H + 2 * pad - k) / stride + 1; }
  int Q() const { return (W + 2 * pad - k) / stride + 1; }
};

namespace cpu {
void maxpool2d(const PoolShape& s, const float* x, float* y);           // y [N,P,Q,C]
void global_avgpool(int N, int H, int W, int C, const float* x, float* y);  // y [N,C]
}  // namespace cpu
namespace cuda {
void maxpool2d(const Exec& ex, const PoolShape& s, const float* x, float* y);
void global_avgpool(const Exec& ex, int N, int H, int W, int C, const float* x, float* y);
}  // namespace cuda

inline void maxpool2d(const Exec& ex, const PoolShape& s, const float* x, float* y) {
  if (ex.cuda()) CAPTION_CUDA_CALL(cuda::maxpool2d(ex, s, x, y));
  else cpu::maxpool2d(s, x, y);
}
inline void global_avgpool(const Exec& ex, int N, int H, int W, int C, const float* x, float* y) {
  if (ex.cuda()) CAPTION_CUDA_CALL(cuda::global_avgpool(ex, N, H, W, C, x, y));
  else cpu::global_avgpool(N, H, W, C, x, y);
}

}  // namespace caption
