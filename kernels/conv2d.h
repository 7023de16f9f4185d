#pragma once
// 2-D convolution in inference form: y = act(conv(x, w) + bias [+ residual]), the shape of every
// ResNet50 layer once BatchNorm is folded into w and bias. CPU: NHWC, a direct convolution whose
// register tiles (6 pixels x 64 channels with AVX-512) read the input in place: no im2col matrix,
// and on every ResNet50 shape faster than OpenBLAS's SGEMM on that matrix alone (README,
// Performance).
// CUDA: cuDNN (cudnnConvolutionBiasActivationForward, the residual as its z input where cuDNN
// allows), NHWC or NCHW, algorithm chosen once per shape and cached, workspace from the pool; the
// timed search also weighs a cuBLASLt matmul over the im2col matrix for NHWC convolutions.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>

#include "kernels/layout.h"
#include "runtime/exec.h"

namespace caption {

struct ConvShape {
  int N, H, W, C;  // input: N images of H x W pixels, C channels
  int K, R, S;     // output channels, kernel height and width
  int stride, pad;
  int P() const { return (H + 2 * pad - R) / stride + 1; }  // output height
  int Q() const { return (W + 2 * pad - S) / stride + 1; }  // output width
};

// How CUDA picks a shape's algorithm on its first call. Heuristic: the first that works in
// cuDNN's ranking (no timing, so every process picks the same one and computes the same bits).
// Timed: every candidate runs, the fastest is kept (PyTorch's cudnn.benchmark), and for NHWC
// convolutions a cuBLASLt matmul (kernels/conv2d_gemm.h) is one of them; the first call of each
// shape costs some milliseconds, and two processes may pick differently. Matmul: that cuBLASLt
// matmul wherever it serves (NHWC, pointers 16-byte aligned), cuDNN's heuristic choice
// elsewhere; as reproducible as Heuristic.
enum class ConvSearch { Heuristic, Timed, Matmul };
inline const char* search_name(ConvSearch s) {
  return s == ConvSearch::Timed ? "timed" : s == ConvSearch::Matmul ? "matmul" : "heuristic";
}

struct ConvParams {
  const float* w;         // NHWC: [K,R,S,C] (torchvision's OIHW transposed to OHWI); NCHW: [K,C,R,S]
  const float* bias;      // [K]
  const float* residual;  // like y, added before the activation, or null
  bool relu;
  bool tf32 = false;               // CUDA: allow TF32 tensor cores (default plain FP32)
  Layout layout = Layout::NHWC;    // of x, y, residual and w; NCHW on CUDA only
  ConvSearch search = ConvSearch::Heuristic;  // CUDA
  // CPU: w already in pack_conv_weights' order for this shape (packed once at load), used instead
  // of w; null: w is packed on each call.
  const float* w_packed = nullptr;
};

// The bfloat16 form (CUDA only): x, w, residual and y hold bfloat16 bits (runtime/tensor.h),
// products accumulate in FP32 on tensor cores. The bias comes in both precisions: cuDNN's fused
// call takes it like y, our epilogue (when cuDNN has no fused kernel) adds it in FP32.
struct ConvParamsBf16 {
  const uint16_t* w;
  const float* bias;
  const uint16_t* bias16;
  const uint16_t* residual;
  bool relu;
  Layout layout = Layout::NHWC;
  ConvSearch search = ConvSearch::Heuristic;
};

namespace cpu {
void conv2d(const ConvShape& s, const float* x, const ConvParams& p, float* y);  // NHWC only
// The CPU kernel's weight order: blocks of 64 output channels (16 or 8 without AVX-512), the
// last zero-padded, each [R,S,C,64] with the block's channels innermost; for 3x3 stride-1 pad-1
// convolutions (Winograd F(2x2,3x3)) each block is [16,C,64] instead: the 4x4 transforms of the
// filters, 16/9 the size. So packed weights serve convolutions of the same R, S, stride and pad.
size_t conv_packed_weights_size(const ConvShape& s);  // in floats
void pack_conv_weights(const ConvShape& s, const float* w_krsc, float* packed);
}
namespace cuda {
void conv2d(const Exec& ex, const ConvShape& s, const float* x, const ConvParams& p, float* y);
void conv2d(const Exec& ex, const ConvShape& s, const uint16_t* x, const ConvParamsBf16& p, uint16_t* y);

// What conv2d runs for (s, p) on the current device, once a call has chosen it: for the
// benchmarks that put the engine's choice beside every alternative.
enum class ConvRoute {
  CudnnFused,  // cudnnConvolutionBiasActivationForward
  CudnnPlain,  // cudnnConvolutionForward, then our bias/residual/ReLU pass
  Gemm,        // a cuBLASLt matmul with the epilogue fused (NHWC; kernels/conv2d_gemm.h)
};
struct ConvChoice {
  ConvRoute route;
  int algo;          // the cuDNN routes' cudnnConvolutionFwdAlgo_t; -1 for Gemm
  size_t workspace;  // bytes of pool scratch per call (Gemm: cuBLASLt's and the im2col matrix)
};
// Of the pointers, only whether those in p are 16-byte aligned matters (x and y are taken to be).
std::optional<ConvChoice> conv2d_choice(const ConvShape& s, const ConvParams& p);
std::optional<ConvChoice> conv2d_choice(const ConvShape& s, const ConvParamsBf16& p);
}  // namespace cuda

inline void conv2d(const Exec& ex, const ConvShape& s, const float* x, const ConvParams& p, float* y) {
  if (ex.cuda()) CAPTION_CUDA_CALL(cuda::conv2d(ex, s, x, p, y));
  else cpu::conv2d(s, x, p, y);
}
inline void conv2d(const Exec& ex, const ConvShape& s, const uint16_t* x, const ConvParamsBf16& p, uint16_t* y) {
  if (!ex.cuda()) throw std::invalid_argument("conv2d: bfloat16 runs on CUDA only");
  CAPTION_CUDA_CALL(cuda::conv2d(ex, s, x, p, y));
}

}  // namespace caption
