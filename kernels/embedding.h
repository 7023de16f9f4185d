#pragma once
// Embedding lookup with a padding row (PyTorch nn.Embedding(padding_idx=0) semantics).
//
// Backward sums each id's gradient rows in one fixed order on both backends, so that CUDA
// equals the CPU bit for bit with no float atomics: take the positions stably sorted by id
// (slot s of the sorted order), cut the sorted order into chunks of kEmbeddingChunk slots, sum
// each id's rows within a chunk from 0 in ascending position (a piece), then the id's pieces
// from 0 in chunk order. The chunks let CUDA spread a frequent id's rows over many warps (the
// <start> and <end> tokens are in every caption) instead of one warp adding them all in turn.
#include <cstdint>

#include "runtime/exec.h"

namespace caption {

constexpr int kEmbeddingChunk = 32;

namespace cpu {
// out[n,:] = table[ids[n],:] for n < N; ids must lie in [0,V) (checked by the caller).
void embedding_forward(const float* table, const int32_t* ids, int N, int D, float* out);
// grad_table [V,D] is overwritten: row v = sum of grad_out[n,:] over n with ids[n] == v,
// and row padding_idx stays zero, summed in the order above.
void embedding_backward(const float* grad_out, const int32_t* ids, int N, int D, int V, int padding_idx,
                        float* grad_table);
}  // namespace cpu

namespace cuda {
void embedding_forward(const Exec& ex, const float* table, const int32_t* ids, int N, int D, float* out);
// Deterministic: no float atomics; rows are summed in the CPU's order.
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
