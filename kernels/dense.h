#pragma once
// Fully connected layer in PyTorch layout, y = act(x W^T + b), with the bias and ReLU fused
// into the GEMM epilogue on CUDA and into one pass over the output on the CPU.
#include "runtime/exec.h"

namespace caption {

enum class Activation { None, ReLU };

// x [M,K], W [N,K], b [N], y [M,N].
namespace cpu {
void dense_forward(const float* x, const float* W, const float* b, float* y, int M, int N, int K,
                   Activation act);
// dy [M,N] is clobbered (turned into the pre-activation gradient). y is the forward output
// (its sign gives the ReLU mask). dx [M,K] may be null, or alias x (dW is computed first);
// dW [N,K] and db [N] are overwritten.
void dense_backward(const float* x, const float* W, const float* y, float* dy, float* dx, float* dW,
                    float* db, int M, int N, int K, Activation act);
}  // namespace cpu

namespace cuda {
void dense_forward(const Exec& ex, const float* x, const float* W, const float* b, float* y, int M, int N,
                   int K, Activation act);
void dense_backward(const Exec& ex, const float* x, const float* W, const float* y, float* dy, float* dx,
                    float* dW, float* db, int M, int N, int K, Activation act);
}  // namespace cuda

inline void dense_forward(const Exec& ex, const float* x, const float* W, const float* b, float* y, int M,
                          int N, int K, Activation act) {
  if (ex.cuda()) CAPTION_CUDA_CALL(cuda::dense_forward(ex, x, W, b, y, M, N, K, act));
  else cpu::dense_forward(x, W, b, y, M, N, K, act);
}
inline void dense_backward(const Exec& ex, const float* x, const float* W, const float* y, float* dy,
                           float* dx, float* dW, float* db, int M, int N, int K, Activation act) {
  if (ex.cuda()) CAPTION_CUDA_CALL(cuda::dense_backward(ex, x, W, y, dy, dx, dW, db, M, N, K, act));
  else cpu::dense_backward(x, W, y, dy, dx, dW, db, M, N, K, act);
}

}  // namespace caption
