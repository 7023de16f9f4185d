#include "kernels/dense.h"

#include "kernels/gemm.h"

namespace caption::cpu {

void dense_forward(const float* x, const float* W, const float* b, float* y, int M, int N, int K,
                   Activation act) {
  gemm(Trans::N, Trans::T, M, N, K, 1.f, x, K, W, K, 0.f, y, N);
  // One pass adds the bias and applies the activation while the row is in cache.
  for (int m = 0; m < M; ++m) {
    float* row = y + size_t(m) * N;
    if (act == Activation::ReLU)
      for (int n = 0; n < N; ++n) {
        const float v = row[n] + b[n];
        row[n] = v > 0.f ? v : 0.f;
      }
    else
      for (int n = 0; n < N; ++n) row[n] += b[n];
  }
}

void dense_backward(const float* x, const float* W, const float* y, float* dy, float* dx, float* dW,
                    float* db, int M, int N, int K, Activation act) {
  // dy becomes the pre-activation gradient (ReLU passes it where y > 0); db sums it over rows.
  for (int n = 0; n < N; ++n) db[n] = 0.f;
  for (int m = 0; m < M; ++m) {
    float* g = dy + size_t(m) * N;
    if (act == Activation::ReLU) {
      const float* out = y + size_t(m) * N;
      for (int n = 0; n < N; ++n) g[n] = out[n] > 0.f ? g[n] : 0.f;
    }
    for (int n = 0; n < N; ++n) db[n] += g[n];
  }
  gemm(Trans::T, Trans::N, N, K, M, 1.f, dy, N, x, K, 0.f, dW, K);    // dW = dy^T x
  if (dx) gemm(Trans::N, Trans::N, M, K, N, 1.f, dy, N, W, K, 0.f, dx, K);  // dx = dy W
}

}  // namespace caption::cpu
