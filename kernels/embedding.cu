#include <cub/device/device_radix_sort.cuh>

#include "kernels/embedding.h"
#include "kernels/launch.cuh"
#include "runtime/cuda_check.h"
#include "runtime/memory_pool.h"

namespace caption::cuda {

namespace {

__global__ void embedding_forward_kernel(const float* table, const int32_t* ids, int N, int D, float* out) {
  const size_t total = size_t(N) * D;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const size_t n = i / D, d = i % D;
    out[i] = table[size_t(ids[n]) * D + d];
  }
}

__global__ void iota_kernel(int32_t* v, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) v[i] = i;
}

// The order of kernels/embedding.h in two passes over the sorted slots, one warp per chunk of
// kEmbeddingChunk slots in each. Pass 1 sums each piece (an id's slots within the chunk) in slot
// order, which is ascending position because the radix sort is stable. A piece whose id lies
// wholly within the chunk is that id's gradient row; a piece of an id that runs across the
// chunk's start goes to first_piece[chunk], one that runs across its end (from within the
// chunk) to last_piece[chunk]. Pass 2 adds the pieces of each id that crosses chunks, starting
// from the chunk where the id starts.
constexpr int kWarpsPerBlock = 4;

// 0 + term(begin) + ... + term(end - 1), added in that order; four terms are loaded before they
// are added, to keep several loads in flight.
template <class Term>
__device__ float sum_in_order(int begin, int end, Term term) {
  float acc = 0.f;
  int j = begin;
  for (; j + 4 <= end; j += 4) {
    float t[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) t[u] = term(j + u);
#pragma unroll
    for (int u = 0; u < 4; ++u) acc += t[u];
  }
  for (; j < end; ++j) acc += term(j);
  return acc;
}

__device__ inline bool same_id(const uint32_t* sorted_ids, int a, int b, int N) {
  return a >= 0 && b < N && sorted_ids[a] == sorted_ids[b];
}

__global__ void sum_pieces_kernel(const float* grad_out, const uint32_t* sorted_ids, const int32_t* sorted_pos,
                                  int N, int D, int padding_idx, float* grad_table, float* first_piece,
                                  float* last_piece) {
  const int chunk = blockIdx.x * kWarpsPerBlock + threadIdx.y;
  const int begin = chunk * kEmbeddingChunk;
  if (begin >= N) return;
  const int end = min(N, begin + kEmbeddingChunk);
  for (int s = begin; s < end;) {  // the warp walks the pieces together
    const uint32_t id = sorted_ids[s];
    int e = s + 1;
    while (e < end && sorted_ids[e] == id) ++e;
    if (int64_t(id) != padding_idx) {
      float* dst = s == begin && same_id(sorted_ids, begin - 1, begin, N) ? first_piece + size_t(chunk) * D
                   : e == end && same_id(sorted_ids, end - 1, end, N)   ? last_piece + size_t(chunk) * D
                                                                        : grad_table + size_t(id) * D;
      for (int d = threadIdx.x; d < D; d += 32)
        dst[d] = sum_in_order(s, e, [&](int j) { return grad_out[size_t(sorted_pos[j]) * D + d]; });
    }
    s = e;
  }
}

__global__ void add_pieces_kernel(const uint32_t* sorted_ids, int N, int D, int padding_idx, const float* first_piece,
                                  const float* last_piece, float* grad_table) {
  const int chunk = blockIdx.x * kWarpsPerBlock + threadIdx.y;
  const int begin = chunk * kEmbeddingChunk;
  if (begin >= N) return;
  const int end = min(N, begin + kEmbeddingChunk);
  // The id of the chunk's last slot, if it starts in this chunk and runs on into the next.
  if (!same_id(sorted_ids, end - 1, end, N) || same_id(sorted_ids, begin - 1, end - 1, N)) return;
  const uint32_t id = sorted_ids[end - 1];
  if (int64_t(id) == padding_idx) return;
  // Chunks after this one that the id reaches: the last is the one where it ends.
  int last = chunk + 1;
  while (same_id(sorted_ids, end - 1, (last + 1) * kEmbeddingChunk, N)) ++last;
  // The id's pieces in chunk order: its last_piece here, then the first_piece of each later chunk.
  for (int d = threadIdx.x; d < D; d += 32)
    grad_table[size_t(id) * D + d] = sum_in_order(chunk, last + 1, [&](int c) {
      return (c == chunk ? last_piece : first_piece)[size_t(c) * D + d];
    });
}

int bits_for(int V) {
  int bits = 1;
  while (bits < 32 && (uint64_t(1) << bits) < uint64_t(V)) ++bits;
  return bits;
}

}  // namespace

void embedding_forward(const Exec& ex, const float* table, const int32_t* ids, int N, int D, float* out) {
  const size_t total = size_t(N) * D;
  if (total == 0) return;
  const int threads = 256;
  embedding_forward_kernel<<<grid_for(total, threads), threads, 0, ex.stream>>>(table, ids, N, D, out);
  CUDA_CHECK_LAUNCH();
}

void embedding_backward(const Exec& ex, const float* grad_out, const int32_t* ids, int N, int D, int V,
                        int padding_idx, float* grad_table) {
  // Rows of ids that never occur, and the padding row, stay zero.
  CUDA_CHECK_THROW(cudaMemsetAsync(grad_table, 0, size_t(V) * D * sizeof(float), ex.stream));
  if (N == 0 || D == 0) return;

  // Sort (id, position) pairs by id; ids lie in [0,V), so they sort as unsigned on their low bits.
  PoolBuffer<int32_t> pos(*ex.pool, N, ex.stream), sorted_pos(*ex.pool, N, ex.stream);
  PoolBuffer<uint32_t> sorted_ids(*ex.pool, N, ex.stream);
  iota_kernel<<<(N + 255) / 256, 256, 0, ex.stream>>>(pos.data(), N);
  CUDA_CHECK_LAUNCH();
  const uint32_t* keys = reinterpret_cast<const uint32_t*>(ids);
  const int end_bit = bits_for(V);
  size_t temp_bytes = 0;
  CUDA_CHECK_THROW(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys, sorted_ids.data(), pos.data(),
                                                   sorted_pos.data(), N, 0, end_bit, ex.stream));
  PoolBuffer<char> temp(*ex.pool, temp_bytes, ex.stream);
  CUDA_CHECK_THROW(cub::DeviceRadixSort::SortPairs(temp.data(), temp_bytes, keys, sorted_ids.data(), pos.data(),
                                                   sorted_pos.data(), N, 0, end_bit, ex.stream));

  const int chunks = (N + kEmbeddingChunk - 1) / kEmbeddingChunk;
  PoolBuffer<float> first_piece(*ex.pool, size_t(chunks) * D, ex.stream);
  PoolBuffer<float> last_piece(*ex.pool, size_t(chunks) * D, ex.stream);
  const dim3 block(32, kWarpsPerBlock);
  const int blocks = (chunks + kWarpsPerBlock - 1) / kWarpsPerBlock;
  sum_pieces_kernel<<<blocks, block, 0, ex.stream>>>(grad_out, sorted_ids.data(), sorted_pos.data(), N, D, padding_idx,
                                                    grad_table, first_piece.data(), last_piece.data());
  CUDA_CHECK_LAUNCH();
  add_pieces_kernel<<<blocks, block, 0, ex.stream>>>(sorted_ids.data(), N, D, padding_idx, first_piece.data(),
                                                    last_piece.data(), grad_table);
  CUDA_CHECK_LAUNCH();
}

}  // namespace caption::cuda
