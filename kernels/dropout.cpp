#include "kernels/dropout.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/parallel.h"
#include "kernels/philox.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace caption::cpu {

namespace {

// Four lanes whatever the target's vector width: Philox's 32x32->64 multiplies come two per
// 128-bit lane pair (pmuludq), and the chains below are laid out for that.
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
typedef uint32_t v4u __attribute__((vector_size(16)));
typedef uint64_t v2u64 __attribute__((vector_size(16)));

// Elements per vector step. Philox is the cost (ten rounds of two 32x32->64 multiplies per
// element), so the counters of 8 elements go through it together as four independent chains
// of two 64-bit lanes, which hides the multiplies' latency.
constexpr int kBlock = 8;
// Elements per parallel work item (a multiple of kBlock), and the size below which one thread
// does the whole call (about 80 us: waking a worker costs tens of microseconds).
constexpr size_t kItem = 2048;
constexpr size_t kParallelMin = 16384;

// The 64-bit product of the low 32-bit halves of each lane and k (pmuludq on SSE2).
inline v2u64 mul32(v2u64 a, uint32_t k) {
#if defined(__SSE2__)
  return (v2u64)_mm_mul_epu32((__m128i)a, _mm_set1_epi64x(k));
#else
  return (a & 0xffffffffu) * uint64_t(k);
#endif
}

// philox::philox4x32_10 on the counters of two elements, one per 64-bit lane, returning the
// first output word of each in the lanes' low halves. Each 32-bit state word lives in the low
// half of a lane; high halves carry garbage that mul32 ignores and that xors and shifts keep
// out of the low halves, so nothing is masked. As in philox::uniform, the counter's low and
// high words are the first two state words and the last two are zero.
struct Chain {
  v2u64 w0, w1, w2, w3;
};

inline void philox_rounds(Chain* c, int chains, uint64_t seed) {
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    if (round > 0) k0 += philox::kBump0, k1 += philox::kBump1;
    for (int j = 0; j < chains; ++j) {
      v2u64 p0 = mul32(c[j].w0, philox::kMul0), p1 = mul32(c[j].w2, philox::kMul1);
      c[j] = Chain{(p1 >> 32) ^ c[j].w1 ^ k0, p1, (p0 >> 32) ^ c[j].w3 ^ k1, p0};
    }
  }
}

// keep iff uniform(seed, counter) >= p, where uniform = (word >> 8) * 2^-24 exactly: the same
// test on the 24-bit integer is word >> 8 >= ceil(p * 2^24) (the product is exact in float).
uint32_t keep_threshold(float p) {
  if (p <= 0.f) return 0;
  if (!(p < 1.f)) return 1u << 24;  // p >= 1 or NaN: never kept
  return uint32_t(std::ceil(p * 16777216.f));
}

// Elements [0, kBlock) of in/out, counters counter0 + i.
inline void mask_block(const float* in, float* out, uint64_t counter0, uint64_t seed, uint32_t threshold,
                       float scale) {
  // Chain 2g holds elements 4g and 4g + 2, chain 2g + 1 elements 4g + 1 and 4g + 3, so that
  // interleaving the two chains' low halves gives elements 4g..4g+3 in order.
  Chain c[kBlock / 2];
  for (int g = 0; g < kBlock / 4; ++g) {
    for (int h = 0; h < 2; ++h) {
      const uint64_t a = counter0 + 4 * g + h, b = a + 2;
      c[2 * g + h] = Chain{v2u64{a, b}, v2u64{a >> 32, b >> 32}, v2u64{}, v2u64{}};
    }
  }
  philox_rounds(c, kBlock / 2, seed);
  for (int g = 0; g < kBlock / 4; ++g) {
    const v4u word = (v4u)((c[2 * g].w0 & 0xffffffffu) | (c[2 * g + 1].w0 << 32));
    const v4i keep = (v4i)(word >> 8) >= int32_t(threshold);  // both below 2^24: signed is fine
    v4f x;
    std::memcpy(&x, in + 4 * g, sizeof x);
    x = (v4f)((v4i)(x * scale) & keep);
    std::memcpy(out + 4 * g, &x, sizeof x);
  }
}

// Forward and backward are the same map: keep-and-scale or zero, from the recomputed mask.
// Element i draws counter offset + i whatever the vector or thread it falls in, so the
// result equals the scalar philox::uniform test of the CUDA kernel bit for bit.
void apply_mask(const float* in, float* out, size_t n, float p, uint64_t seed, uint64_t offset) {
  if (p == 0.f) {
    if (out != in) std::memmove(out, in, n * sizeof(float));
    return;
  }
  const float scale = 1.0f / (1.0f - p);
  const uint32_t threshold = keep_threshold(p);
  parallel_for((n + kItem - 1) / kItem, n >= kParallelMin, [=](size_t item) {
    const size_t begin = item * kItem, end = std::min(n, begin + kItem);
    size_t i = begin;
    for (; i + kBlock <= end; i += kBlock) mask_block(in + i, out + i, offset + i, seed, threshold, scale);
    for (; i < end; ++i) out[i] = philox::uniform(seed, offset + i) >= p ? in[i] * scale : 0.f;
  });
}

}  // namespace

void dropout_forward(const float* x, float* y, size_t n, float p, uint64_t seed, uint64_t offset) {
  apply_mask(x, y, n, p, seed, offset);
}

void dropout_backward(const float* dy, float* dx, size_t n, float p, uint64_t seed, uint64_t offset) {
  apply_mask(dy, dx, n, p, seed, offset);
}

}  // namespace caption::cpu
