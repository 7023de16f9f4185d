#include "kernels/embedding.h"

#include <cstring>
#include <vector>

namespace caption::cpu {

void embedding_forward(const float* table, const int32_t* ids, int N, int D, float* out) {
  for (int n = 0; n < N; ++n)
    std::memcpy(out + size_t(n) * D, table + size_t(ids[n]) * D, size_t(D) * sizeof(float));
}

void embedding_backward(const float* grad_out, const int32_t* ids, int N, int D, int V, int padding_idx,
                        float* grad_table) {
  std::memset(grad_table, 0, size_t(V) * D * sizeof(float));
  // The stable sort by id, without sorting: the r-th occurrence of id v sits at slot first[v] + r.
  std::vector<int64_t> first(size_t(V) + 1, 0);
  for (int n = 0; n < N; ++n) ++first[size_t(ids[n]) + 1];
  for (int v = 0; v < V; ++v) first[v + 1] += first[v];
  std::vector<int64_t> next(first.begin(), first.end() - 1);
  // An id's first piece is summed in its row itself (the row is 0 + that piece); a later piece in
  // a buffer of its own, added to the row when the next piece starts or at the end. Only ids that
  // cross a chunk boundary get a buffer.
  std::vector<int32_t> buffer_of(V, -1), owners;
  std::vector<float> buffers;
  auto add_buffer = [&](int v) {
    float* row = grad_table + size_t(v) * D;
    float* p = buffers.data() + size_t(buffer_of[v]) * D;
    for (int d = 0; d < D; ++d) row[d] += p[d], p[d] = 0.f;
  };
  for (int n = 0; n < N; ++n) {
    const int v = ids[n];
    const int64_t slot = next[v]++;
    if (v == padding_idx) continue;
    float* dst = grad_table + size_t(v) * D;
    if (slot / kEmbeddingChunk != first[v] / kEmbeddingChunk) {  // past the first piece
      if (buffer_of[v] < 0) {
        buffer_of[v] = int32_t(owners.size());
        owners.push_back(v);
        buffers.resize(owners.size() * size_t(D), 0.f);
      } else if (slot % kEmbeddingChunk == 0) {
        add_buffer(v);  // the piece before this one ends
      }
      dst = buffers.data() + size_t(buffer_of[v]) * D;
    }
    const float* g = grad_out + size_t(n) * D;
    for (int d = 0; d < D; ++d) dst[d] += g[d];
  }
  for (int v : owners) add_buffer(v);
}

}  // namespace caption::cpu
