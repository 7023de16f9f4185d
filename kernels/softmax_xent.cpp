#include "kernels/softmax_xent.h"

#include <cmath>
#include <stdexcept>

namespace caption::cpu {

namespace {

// Max-subtracted so that large logits cannot overflow exp; the sum is kept in double so
// that the reference stays accurate for vocabularies of ten thousand words.
float row_logsumexp(const float* x, int V) {
  float mx = x[0];
  for (int v = 1; v < V; ++v) mx = std::max(mx, x[v]);
  double sum = 0;
  for (int v = 0; v < V; ++v) sum += std::exp(x[v] - mx);
  return float(double(mx) + std::log(sum));
}

void check_target(int32_t t, int V) {
  if (t < 0 || t >= V) throw std::out_of_range("softmax_xent: target outside [0, V)");
}

}  // namespace

void softmax_xent_forward(const float* logits, const int32_t* targets, int N, int V, float* loss, float* lse) {
  for (int n = 0; n < N; ++n) {
    const float* x = logits + size_t(n) * V;
    int32_t t = targets[n];
    check_target(t, V);
    lse[n] = row_logsumexp(x, V);
    loss[n] = t == 0 ? 0.f : lse[n] - x[t];
  }
}

void softmax_xent_backward(const float* logits, const int32_t* targets, const float* lse, int N, int V,
                           float scale, float* dlogits) {
  for (int n = 0; n < N; ++n) {
    const float* x = logits + size_t(n) * V;
    float* d = dlogits + size_t(n) * V;
    int32_t t = targets[n];
    check_target(t, V);
    if (t == 0) {
      for (int v = 0; v < V; ++v) d[v] = 0.f;
      continue;
    }
    // x[t] is read before the loop: with dlogits == logits the loop overwrites it.
    float l = lse[n], xt = x[t];
    for (int v = 0; v < V; ++v) d[v] = scale * std::exp(x[v] - l);
    d[t] = scale * (std::exp(xt - l) - 1.f);
  }
}

void logsumexp_rows(const float* logits, int N, int V, float* lse) {
  for (int n = 0; n < N; ++n) lse[n] = row_logsumexp(logits + size_t(n) * V, V);
}

}  // namespace caption::cpu
