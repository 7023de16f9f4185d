#pragma once
// Per-row top-k of log-probabilities for beam search, so that only [R,k] values leave the
// device instead of the whole [R,V] matrix. For row r, the log-probability of token v is
// logits[r,v] - lse[r] (in float); the k best allowed tokens come out sorted best first,
// ties (equal log-probabilities) broken by the lower token id: the order a sort of the full
// row would give. Allowed tokens: first_allowed <= v < V and v != banned (-1: none banned).
// When fewer than k tokens are allowed, the list ends with token -1 and -inf. Deterministic.
#include <cstdint>
#include <stdexcept>

#include "runtime/exec.h"

namespace caption {

constexpr int kBeamTopkMaxK = 64;  // 2 * beam for beams up to 32

inline void beam_topk_check(int R, int V, int k) {
  if (k < 1 || k > kBeamTopkMaxK) throw std::invalid_argument("beam_topk: k must be in [1, 64]");
  if (R < 0 || V < 1) throw std::invalid_argument("beam_topk: needs R >= 0 and V >= 1");
}

namespace cpu {
// logits [R,V], lse [R]; writes tokens [R,k] and logp [R,k].
void beam_topk(const float* logits, const float* lse, int R, int V, int k, int32_t first_allowed,
               int32_t banned, int32_t* tokens, float* logp);
}  // namespace cpu

namespace cuda {
void beam_topk(const Exec& ex, const float* logits, const float* lse, int R, int V, int k,
               int32_t first_allowed, int32_t banned, int32_t* tokens, float* logp);
}  // namespace cuda

inline void beam_topk(const Exec& ex, const float* logits, const float* lse, int R, int V, int k,
                      int32_t first_allowed, int32_t banned, int32_t* tokens, float* logp) {
  if (ex.cuda()) CAPTION_CUDA_CALL(cuda::beam_topk(ex, logits, lse, R, V, k, first_allowed, banned, tokens, logp));
  else cpu::beam_topk(logits, lse, R, V, k, first_allowed, banned, tokens, logp);
}

}  // namespace caption
