#pragma once
// 2-D convolution in inference form, NHWC: y = act(conv(x, w) + bias [+ residual]), the shape of
// every ResNet50 layer once BatchNorm is folded into w and bias. CPU: im2col + OpenBLAS GEMM.
// CUDA: cuDNN (cudnnConvolutionBiasActivationForward, the residual as its z input where
// cuDNN allows), algorithm chosen once per shape and cached, workspace from the pool.
#include "runtime/exec.h"

namespace caption {

struct ConvShape {
  int N, H, W, C;  // input [N,H,W,C]
  int K, R, S;     // output channels, kernel height and width
  int stride, pad;
  int P() const { return (H + 2 * pad - R) / stride + 1; }  // output height
  int Q() const { return (W + 2 * pad - S) / stride + 1; }  // output width
};

struct ConvParams {
  const float* w;         // [K,R,S,C] (KRSC: torchvision's OIHW transposed to OHWI)
  const float* bias;      // [K]
  const float* residual;  // [N,P,Q,K] added before the activation, or null
  bool relu;
  bool tf32 = false;  // CUDA: allow TF32 tensor cores (default plain FP32)
};

namespace cpu {
void conv2d(const ConvShape& s, const float* x, const ConvParams& p, float* y);
}
namespace cuda {
void conv2d(const Exec& ex, const ConvShape& s, const float* x, const ConvParams& p, float* y);
}

inline void conv2d(const Exec& ex, const ConvShape& s, const float* x, const ConvParams& p, float* y) {
  if (ex.cuda()) CAPTION_CUDA_CALL(cuda::conv2d(ex, s, x, p, y));
  else cpu::conv2d(s, x, p, y);
}

}  // namespace caption
