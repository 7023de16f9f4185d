#include <cstdint>

#include "kernels/beam_topk.h"
#include "runtime/cuda_check.h"

namespace caption::cuda {

namespace {

// One block per row: V is 2k-10k, so each thread scans a strided slice of 15-80 logits
// (coalesced across the block) and keeps its own sorted top-KMAX in registers; the block
// then pops the best head k times.
constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int32_t kEmpty = 0x7fffffff;  // empty slot: ranks after every real token, -inf ones included

__device__ __forceinline__ bool better(float a, int32_t ta, float b, int32_t tb) {
  return a > b || (a == b && ta < tb);
}

// KMAX >= k slots per thread (a power of two, so that few instantiations cover k <= 64);
// the lists are fully unrolled so they stay in registers. Each round reduces the threads'
// heads over the warp by shuffles and across warps through shared memory (double-buffered,
// one barrier a round); the winner's owner pops it. Tokens are unique across threads, so
// exactly one thread owns the winner; the fixed reduction order makes the result deterministic.
template <int KMAX>
__global__ void __launch_bounds__(kThreads)
beam_topk_kernel(const float* __restrict__ logits, const float* __restrict__ lse, int V, int k, int32_t first,
                 int32_t banned, int32_t* __restrict__ tokens, float* __restrict__ logp) {
  const float* row = logits + size_t(blockIdx.x) * V;
  const float l = lse[blockIdx.x];
  float val[KMAX];
  int32_t tok[KMAX];
#pragma unroll
  for (int i = 0; i < KMAX; ++i) val[i] = -INFINITY, tok[i] = kEmpty;

  for (int32_t v = first + int32_t(threadIdx.x); v < V; v += kThreads) {
    const float lp = row[v] - l;  // the value the caller sees, so ties are judged on it
    if (v == banned || !better(lp, v, val[KMAX - 1], tok[KMAX - 1])) continue;
    val[KMAX - 1] = lp, tok[KMAX - 1] = v;
#pragma unroll
    for (int i = KMAX - 1; i > 0; --i)
      if (better(val[i], tok[i], val[i - 1], tok[i - 1])) {
        float tv = val[i];
        int32_t tt = tok[i];
        val[i] = val[i - 1], tok[i] = tok[i - 1];
        val[i - 1] = tv, tok[i - 1] = tt;
      }
  }

  __shared__ float s_val[2][kWarps];
  __shared__ int32_t s_tok[2][kWarps];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  int32_t* out_tok = tokens + size_t(blockIdx.x) * k;
  float* out_lp = logp + size_t(blockIdx.x) * k;
  for (int j = 0; j < k; ++j) {
    float bv = val[0];
    int32_t bt = tok[0];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      int32_t ot = __shfl_xor_sync(0xffffffffu, bt, o);
      if (better(ov, ot, bv, bt)) bv = ov, bt = ot;
    }
    const int buf = j & 1;
    if (lane == 0) s_val[buf][warp] = bv, s_tok[buf][warp] = bt;
    __syncthreads();
    bv = s_val[buf][0], bt = s_tok[buf][0];
#pragma unroll
    for (int w = 1; w < kWarps; ++w)
      if (better(s_val[buf][w], s_tok[buf][w], bv, bt)) bv = s_val[buf][w], bt = s_tok[buf][w];
    if (bt == kEmpty) {  // fewer than k allowed tokens; every thread sees this, so all leave
      for (int i = j + threadIdx.x; i < k; i += kThreads) out_tok[i] = -1, out_lp[i] = -INFINITY;
      return;
    }
    if (threadIdx.x == 0) out_tok[j] = bt, out_lp[j] = bv;
    if (tok[0] == bt) {
#pragma unroll
      for (int i = 0; i < KMAX - 1; ++i) val[i] = val[i + 1], tok[i] = tok[i + 1];
      val[KMAX - 1] = -INFINITY, tok[KMAX - 1] = kEmpty;
    }
  }
}

template <int KMAX>
void launch(const Exec& ex, const float* logits, const float* lse, int R, int V, int k, int32_t first,
            int32_t banned, int32_t* tokens, float* logp) {
  beam_topk_kernel<KMAX><<<R, kThreads, 0, ex.stream>>>(logits, lse, V, k, first, banned, tokens, logp);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void beam_topk(const Exec& ex, const float* logits, const float* lse, int R, int V, int k, int32_t first_allowed,
               int32_t banned, int32_t* tokens, float* logp) {
  beam_topk_check(R, V, k);
  if (R == 0) return;
  const int32_t first = first_allowed < 0 ? 0 : first_allowed > V ? V : first_allowed;  // no overflow in v
  static_assert(kBeamTopkMaxK == 64, "instantiations below cover k <= 64");
  if (k <= 2) launch<2>(ex, logits, lse, R, V, k, first, banned, tokens, logp);
  else if (k <= 4) launch<4>(ex, logits, lse, R, V, k, first, banned, tokens, logp);
  else if (k <= 8) launch<8>(ex, logits, lse, R, V, k, first, banned, tokens, logp);
  else if (k <= 16) launch<16>(ex, logits, lse, R, V, k, first, banned, tokens, logp);
  else if (k <= 32) launch<32>(ex, logits, lse, R, V, k, first, banned, tokens, logp);
  else launch<64>(ex, logits, lse, R, V, k, first, banned, tokens, logp);
}

}  // namespace caption::cuda
