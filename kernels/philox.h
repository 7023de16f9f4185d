#pragma once
// Philox-4x32-10, the counter-based generator of Salmon, Moraes, Dror and Shaw, "Parallel
// random numbers: as easy as 1, 2, 3" (SC 2011). A draw is a pure function of (key, counter),
// so the CPU and every CUDA thread compute the same stream with no state to carry: that is
// what lets dropout recompute its mask in backward, and CPU and CUDA agree bit for bit.
#include <cstdint>

#ifdef __CUDACC__
#define CAPTION_PHILOX_FN __host__ __device__ __forceinline__
#else
#define CAPTION_PHILOX_FN inline
#endif

namespace caption::philox {

struct Block {
  uint32_t w[4];
};

// Multipliers and Weyl key increments of the paper's Philox-4x32.
constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
constexpr uint32_t kBump0 = 0x9E3779B9u, kBump1 = 0xBB67AE85u;

CAPTION_PHILOX_FN void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
#ifdef __CUDA_ARCH__
  lo = a * b;
  hi = __umulhi(a, b);
#else
  uint64_t p = uint64_t(a) * b;
  lo = uint32_t(p);
  hi = uint32_t(p >> 32);
#endif
}

// Ten rounds; the key is bumped between rounds (nine times), as in the reference.
CAPTION_PHILOX_FN Block philox4x32_10(Block ctr, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) k0 += kBump0, k1 += kBump1;
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kMul0, ctr.w[0], hi0, lo0);
    mulhilo(kMul1, ctr.w[2], hi1, lo1);
    ctr = Block{{hi1 ^ ctr.w[1] ^ k0, lo1, hi0 ^ ctr.w[3] ^ k1, lo0}};
  }
  return ctr;
}

// The block of (seed, counter): the counter's low and high words, then two zero words, keyed by
// the seed's low and high words.
CAPTION_PHILOX_FN Block draw(uint64_t seed, uint64_t counter) {
  return philox4x32_10(Block{{uint32_t(counter), uint32_t(counter >> 32), 0u, 0u}}, uint32_t(seed),
                       uint32_t(seed >> 32));
}

// A word as a uniform float in [0,1): its top 24 bits, so that every value is exact in float
// and host and device round identically.
CAPTION_PHILOX_FN float to_uniform(uint32_t word) { return float(word >> 8) * (1.0f / 16777216.0f); }

// Element e of the stream of `seed`: word e % 4 of the block at counter e / 4, so that one draw
// serves four consecutive elements (ten rounds per four uniforms, not per one).
CAPTION_PHILOX_FN float uniform(uint64_t seed, uint64_t element) {
  return to_uniform(draw(seed, element >> 2).w[element & 3]);
}

}  // namespace caption::philox

#undef CAPTION_PHILOX_FN
