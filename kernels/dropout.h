#pragma once
// Inverted dropout with a counter-based RNG (Philox-4x32-10, kernels/philox.h): element i of
// a call keeps its value iff uniform(seed, offset + i) >= p (word (offset + i) % 4 of the
// block at counter (offset + i) / 4), and kept values are scaled by
// 1/(1-p). CPU and CUDA draw the same mask for the same (seed, offset), and backward
// recomputes the mask instead of storing it.
#include <cstddef>
#include <cstdint>

#include "runtime/exec.h"

namespace caption {

namespace cpu {
void dropout_forward(const float* x, float* y, size_t n, float p, uint64_t seed, uint64_t offset);
void dropout_backward(const float* dy, float* dx, size_t n, float p, uint64_t seed, uint64_t offset);
}  // namespace cpu

namespace cuda {
void dropout_forward(const Exec& ex, const float* x, float* y, size_t n, float p, uint64_t seed,
                     uint64_t offset, const uint64_t* offset_at);
void dropout_backward(const Exec& ex, const float* dy, float* dx, size_t n, float p, uint64_t seed,
                      uint64_t offset, const uint64_t* offset_at);
}  // namespace cuda

// In-place (y == x, dx == dy) is allowed. p == 0 copies. When offset_at is not null, the
// counter offset is the word it points to (in the exec's memory) as the op runs, and `offset`
// is ignored: a captured CUDA graph replays its arguments, so a per-step offset lives in memory.
inline void dropout_forward(const Exec& ex, const float* x, float* y, size_t n, float p, uint64_t seed,
                            uint64_t offset, const uint64_t* offset_at = nullptr) {
  if (ex.cuda()) CAPTION_CUDA_CALL(cuda::dropout_forward(ex, x, y, n, p, seed, offset, offset_at));
  else cpu::dropout_forward(x, y, n, p, seed, offset_at ? *offset_at : offset);
}
inline void dropout_backward(const Exec& ex, const float* dy, float* dx, size_t n, float p, uint64_t seed,
                             uint64_t offset, const uint64_t* offset_at = nullptr) {
  if (ex.cuda()) CAPTION_CUDA_CALL(cuda::dropout_backward(ex, dy, dx, n, p, seed, offset, offset_at));
  else cpu::dropout_backward(dy, dx, n, p, seed, offset_at ? *offset_at : offset);
}

}  // namespace caption
