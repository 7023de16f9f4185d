#include "kernels/embedding.h"

#include <cstring>

namespace caption::cpu {

void embedding_forward(const float* table, const int32_t* ids, int N, int D, float* out) {
  for (int n = 0; n < N; ++n)
    std::memcpy(out + size_t(n) * D, table + size_t(ids[n]) * D, size_t(D) * sizeof(float));
}

void embedding_backward(const float* grad_out, const int32_t* ids, int N, int D, int V, int padding_idx,
                        float* grad_table) {
  std::memset(grad_table, 0, size_t(V) * D * sizeof(float));
  for (int n = 0; n < N; ++n) {
    if (ids[n] == padding_idx) continue;
    float* row = grad_table + size_t(ids[n]) * D;
    const float* g = grad_out + size_t(n) * D;
    for (int d = 0; d < D; ++d) row[d] += g[d];
  }
}

}  // namespace caption::cpu
