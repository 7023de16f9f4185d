#include "kernels/dropout.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/parallel.h"
#include "kernels/philox.h"
#include "kernels/vec_math.h"

namespace caption::cpu {

namespace {

// A draw's four words mask four floats (v4f); the draws themselves run one per 64-bit lane of
// the widest vector the target has, since Philox's 32x32->64 multiplies are one instruction per
// vector (pmuludq and its AVX2 / AVX-512 forms).
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
typedef uint32_t v4u __attribute__((vector_size(16)));
constexpr int kLanes = vec::kLanes / 2;  // 64-bit lanes in vec_math.h's float vectors
typedef uint64_t vu64 __attribute__((vector_size(8 * kLanes)));

// Elements per vector step. Philox is the cost (ten rounds of two 32x32->64 multiplies per
// draw of four elements), so four independent chains of kLanes draws go through it together,
// which hides the multiplies' latency.
constexpr int kChains = 4;
constexpr int kDraws = kChains * kLanes;
constexpr int kBlock = 4 * kDraws;
// Elements per parallel work item, and the size below which one thread does the whole call
// (tens of microseconds, as long as waking a worker takes).
constexpr size_t kItem = 4096;
constexpr size_t kParallelMin = 16384;

// The 64-bit product of the low 32-bit halves of each lane and k: pmuludq, spelled out, since
// compilers make the masked 64-bit product a full 64-bit multiply (vpmullq, several times slower).
inline vu64 mul32(vu64 a, uint32_t k) {
#if defined(__AVX512F__)
  // The zero-masked form: GCC 12 warns that the plain one's (unused) pass-through is uninitialised.
  return (vu64)_mm512_maskz_mul_epu32(0xff, (__m512i)a, _mm512_set1_epi64(k));
#elif defined(__AVX2__)
  return (vu64)_mm256_mul_epu32((__m256i)a, _mm256_set1_epi64x(k));
#elif defined(__SSE2__)
  return (vu64)_mm_mul_epu32((__m128i)a, _mm_set1_epi64x(k));
#else
  return (a & 0xffffffffu) * uint64_t(k);
#endif
}

// philox::philox4x32_10 on kLanes counters, one per 64-bit lane, leaving the four output words of
// each in the lanes' low halves. Each 32-bit state word lives in the low half of a lane; high
// halves carry garbage that mul32 ignores and that xors and shifts keep out of the low halves,
// so nothing is masked. As in philox::draw, the counter's low and high words are the first two
// state words and the last two are zero.
struct Chain {
  vu64 w0, w1, w2, w3;
};

inline void philox_rounds(Chain* c, int chains, uint64_t seed) {
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    if (round > 0) k0 += philox::kBump0, k1 += philox::kBump1;
    for (int j = 0; j < chains; ++j) {
      const vu64 p0 = mul32(c[j].w0, philox::kMul0), p1 = mul32(c[j].w2, philox::kMul1);
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

// Elements [0, kBlock) of in/out: the draws at counters counter0, counter0 + 1, ...
inline void mask_block(const float* in, float* out, uint64_t counter0, uint64_t seed, uint32_t threshold,
                       float scale) {
  // Chain j holds draws j * kLanes + l, one per lane l.
  Chain c[kChains];
  for (int j = 0; j < kChains; ++j) {
    vu64 counter;
    for (int l = 0; l < kLanes; ++l) counter[l] = counter0 + uint64_t(j) * kLanes + l;
    c[j] = Chain{counter, counter >> 32, vu64{}, vu64{}};
  }
  philox_rounds(c, kChains, seed);
  // The words in element order: draw g's four low halves, packed two to a 64-bit lane first
  // (vector ops), then laid out draw by draw.
  uint64_t words[2 * kDraws];
  for (int j = 0; j < kChains; ++j) {
    const vu64 w01 = (c[j].w0 & 0xffffffffu) | (c[j].w1 << 32), w23 = (c[j].w2 & 0xffffffffu) | (c[j].w3 << 32);
    for (int l = 0; l < kLanes; ++l) {
      words[2 * (j * kLanes + l)] = w01[l];
      words[2 * (j * kLanes + l) + 1] = w23[l];
    }
  }
  for (int g = 0; g < kDraws; ++g) {
    v4u word;
    std::memcpy(&word, words + 2 * g, sizeof word);
    const v4i keep = (v4i)(word >> 8) >= int32_t(threshold);  // both below 2^24: signed is fine
    v4f x;
    std::memcpy(&x, in + 4 * g, sizeof x);
    x = (v4f)((v4i)(x * scale) & keep);
    std::memcpy(out + 4 * g, &x, sizeof x);
  }
}

// Forward and backward are the same map: keep-and-scale or zero, from the recomputed mask.
// Element i takes philox::uniform(seed, offset + i) whatever the vector or thread it falls in,
// so the result equals the CUDA kernel's bit for bit. Vector blocks start where offset + i is
// a multiple of 4 (a draw's first word); the elements before and after take the scalar test.
void apply_mask(const float* in, float* out, size_t n, float p, uint64_t seed, uint64_t offset) {
  if (p == 0.f) {
    if (out != in) std::memmove(out, in, n * sizeof(float));
    return;
  }
  const float scale = 1.0f / (1.0f - p);
  const uint32_t threshold = keep_threshold(p);
  parallel_for((n + kItem - 1) / kItem, n >= kParallelMin, [=](size_t item) {
    const size_t begin = item * kItem, end = std::min(n, begin + kItem);
    auto scalar = [&](size_t i) { out[i] = philox::uniform(seed, offset + i) >= p ? in[i] * scale : 0.f; };
    size_t i = begin;
    for (; i < end && (offset + i) % 4 != 0; ++i) scalar(i);
    for (; i + kBlock <= end; i += kBlock) mask_block(in + i, out + i, (offset + i) / 4, seed, threshold, scale);
    for (; i < end; ++i) scalar(i);
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
