#pragma once
// What the CUDA kernels' launches share: the grid of the grid-stride loops, and the pointer
// alignment that decides between vector and scalar access (and what cuBLASLt may assume).
#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace caption::cuda {

// Blocks for a grid-stride loop over n items: one item per thread, at most 65536 blocks (the
// loop covers the rest).
inline int grid_for(size_t n, int threads) { return int(std::min<size_t>((n + threads - 1) / threads, 65536)); }

// The largest power of two up to 256 that divides p's address.
inline uint32_t alignment_of(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  uint32_t al = 256;
  while (al > 1 && a % al != 0) al /= 2;
  return al;
}
inline bool aligned16(const void* p) { return alignment_of(p) >= 16; }

}  // namespace caption::cuda
