#include "kernels/beam_topk.h"

#include <algorithm>
#include <limits>

#include "kernels/parallel.h"

namespace caption::cpu {

namespace {

// Rows go to threads in groups of about kItemLogits logits, each row done whole by one thread;
// below kParallelMin logits one thread does it all (waking a worker costs tens of microseconds).
constexpr size_t kItemLogits = 16384;
constexpr size_t kParallelMin = size_t(1) << 16;

// Empty slots rank after every real token, -inf ones included; written out as -1.
constexpr int32_t kEmpty = std::numeric_limits<int32_t>::max();

inline bool better(float a, int32_t ta, float b, int32_t tb) { return a > b || (a == b && ta < tb); }

void row_topk(const float* x, float lse, int V, int k, int32_t first, int32_t banned, int32_t* tokens, float* logp) {
  float val[kBeamTopkMaxK];
  int32_t tok[kBeamTopkMaxK];
  std::fill_n(val, k, -std::numeric_limits<float>::infinity());
  std::fill_n(tok, k, kEmpty);
  for (int32_t v = first; v < V; ++v) {
    const float lp = x[v] - lse;  // the value the caller sees, so ties are judged on it
    if (v == banned || !better(lp, v, val[k - 1], tok[k - 1])) continue;
    int i = k - 1;
    for (; i > 0 && better(lp, v, val[i - 1], tok[i - 1]); --i) val[i] = val[i - 1], tok[i] = tok[i - 1];
    val[i] = lp, tok[i] = v;
  }
  for (int i = 0; i < k; ++i) {
    tokens[i] = tok[i] == kEmpty ? -1 : tok[i];
    logp[i] = val[i];
  }
}

}  // namespace

void beam_topk(const float* logits, const float* lse, int R, int V, int k, int32_t first_allowed,
               int32_t banned, int32_t* tokens, float* logp) {
  beam_topk_check(R, V, k);
  const int32_t first = std::clamp(first_allowed, int32_t(0), int32_t(V));
  parallel_rows(size_t(R), size_t(V), kItemLogits, kParallelMin, [&](size_t r) {
    row_topk(logits + r * V, lse[r], V, k, first, banned, tokens + r * k, logp + r * k);
  });
}

}  // namespace caption::cpu
