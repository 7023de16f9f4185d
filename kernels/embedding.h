#pragma once
// Embedding lookup with a padding row (PyTorch nn.Embedding(padding_idx=0) semantics).
#include <cstdint>

#include "runtime/exec.h"

namespace caption {

namespace cpu {
// out[n,:] = table[ids[n],:] for n < N; ids must lie in [0,V) (checked by the caller).
void embedding_forward(const float* table, const int32_t* ids, int N, int D, float* out);
// grad_table [V,D] is overwritten: row v = sum of grad_out[n,:] over n with ids[n] == v,
// and row padding_idx stays zero. Summation order is fixed (ascending n): deterministic.
void embedding_backward(const float* grad_out, const int32_t* ids, int N, int D, int V, int padding_idx,
                        float* grad_table);
}  // namespace cpu

namespace cuda {
void embedding_forward(const Exec& ex, const float* table, const int32_t* ids, int N, int D, float* out);
// Deterministic: no float atomics; rows are summed in ascending n as on the CPU.
void embedding_backward(const Exec& ex, const float* grad_out, const int32_t* ids, int N, int D, int V,
                        int padding_idx, float* grad_table);
}  // namespace cuda

inline void embedding_forward(const Exec& ex, const float* table, const int32_t* ids, int N, int D,
                              float* out) {
  if (ex.cuda()) CAPTION_CUDA_CALL(cuda::embedding_forward(ex, table, ids, N, D, out));
  else cpu::embedding_forward(table, ids, N, D, out);
}
inline void embedding_backward(const Exec& ex, const float* grad_out, const int32_t* ids, int N, int D,
                               int V, int padding_idx, float* grad_table) {
  if (ex.cuda()) CAPTION_CUDA_CALL(cuda::embedding_backward(ex, grad_out, ids, N, D, V, padding_idx, grad_table));
  else cpu::embedding_backward(grad_out, ids, N, D, V, padding_idx, grad_table);
}

}  // namespace caption
