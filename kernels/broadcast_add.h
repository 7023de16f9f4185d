#pragma once
// out[b,t,:] = h[b,t,:] + a[b,:]: merges the image vector into every timestep of the caption.
// Backward: dh = dout (no op needed), da[b,:] = sum over t of dout[b,t,:].
#include "runtime/exec.h"

namespace caption {

namespace cpu {
void broadcast_add(const float* h, const float* a, float* out, int B, int T, int H);  // out may alias h
void broadcast_add_backward(const float* dout, float* da, int B, int T, int H);        // da overwritten
}  // namespace cpu

namespace cuda {
void broadcast_add(const Exec& ex, const float* h, const float* a, float* out, int B, int T, int H);
void broadcast_add_backward(const Exec& ex, const float* dout, float* da, int B, int T, int H);
}  // namespace cuda

inline void broadcast_add(const Exec& ex, const float* h, const float* a, float* out, int B, int T, int H) {
  if (ex.cuda()) CAPTION_CUDA_CALL(cuda::broadcast_add(ex, h, a, out, B, T, H));
  else cpu::broadcast_add(h, a, out, B, T, H);
}
inline void broadcast_add_backward(const Exec& ex, const float* dout, float* da, int B, int T, int H) {
  if (ex.cuda()) CAPTION_CUDA_CALL(cuda::broadcast_add_backward(ex, dout, da, B, T, H));
  else cpu::broadcast_add_backward(dout, da, B, T, H);
}

}  // namespace caption
