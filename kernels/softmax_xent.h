#pragma once
// Fused softmax + cross-entropy over rows of logits with a padding mask: rows whose target
// is 0 (<pad>) contribute nothing. The forward keeps one logsumexp per row and never writes
// the probability matrix; the backward recomputes softmax from logits and lse.
#include <cstdint>

#include "runtime/exec.h"

namespace caption {

namespace cpu {
// logits [N,V], targets [N]. Writes lse[n] = logsumexp(logits[n,:]) for every row and
// loss[n] = lse[n] - logits[n,targets[n]] (0 for padding rows).
void softmax_xent_forward(const float* logits, const int32_t* targets, int N, int V, float* loss, float* lse);
// dlogits[n,:] = scale * (softmax(logits[n,:]) - onehot(targets[n])) and 0 for padding rows.
// dlogits may alias logits (in place).
void softmax_xent_backward(const float* logits, const int32_t* targets, const float* lse, int N, int V,
                           float scale, float* dlogits);
// lse only (inference: log-probabilities are logits - lse).
void logsumexp_rows(const float* logits, int N, int V, float* lse);
}  // namespace cpu

namespace cuda {
void softmax_xent_forward(const Exec& ex, const float* logits, const int32_t* targets, int N, int V,
                          float* loss, float* lse);
void softmax_xent_backward(const Exec& ex, const float* logits, const int32_t* targets, const float* lse,
                           int N, int V, float scale, float* dlogits, const float* scale_at);
void logsumexp_rows(const Exec& ex, const float* logits, int N, int V, float* lse);
}  // namespace cuda

inline void softmax_xent_forward(const Exec& ex, const float* logits, const int32_t* targets, int N, int V,
                                 float* loss, float* lse) {
  if (ex.cuda()) CAPTION_CUDA_CALL(cuda::softmax_xent_forward(ex, logits, targets, N, V, loss, lse));
  else cpu::softmax_xent_forward(logits, targets, N, V, loss, lse);
}
// When scale_at is not null, the scale is the float it points to (in the exec's memory) as the
// op runs, and `scale` is ignored (a captured CUDA graph replays its arguments; the mean's
// divisor changes from batch to batch).
inline void softmax_xent_backward(const Exec& ex, const float* logits, const int32_t* targets,
                                  const float* lse, int N, int V, float scale, float* dlogits,
                                  const float* scale_at = nullptr) {
  if (ex.cuda())
    CAPTION_CUDA_CALL(cuda::softmax_xent_backward(ex, logits, targets, lse, N, V, scale, dlogits, scale_at));
  else cpu::softmax_xent_backward(logits, targets, lse, N, V, scale_at ? *scale_at : scale, dlogits);
}
inline void logsumexp_rows(const Exec& ex, const float* logits, int N, int V, float* lse) {
  if (ex.cuda()) CAPTION_CUDA_CALL(cuda::logsumexp_rows(ex, logits, N, V, lse));
  else cpu::logsumexp_rows(logits, N, V, lse);
}

}  // namespace caption
