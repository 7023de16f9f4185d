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

// One warp per sorted slot. The warp at the first slot of each run of equal ids sums that
// id's gradient rows in slot order, which is ascending position because the radix sort is
// stable: the same order as the CPU, so the result is deterministic and equal to it. Each
// step loads four rows before adding them in order, to keep several loads in flight when
// a frequent id has a long run.
constexpr int kWarpsPerBlock = 4;

__global__ void embedding_backward_kernel(const float* grad_out, const uint32_t* sorted_ids,
                                          const int32_t* sorted_pos, int N, int D, int padding_idx,
                                          float* grad_table) {
  const int s = blockIdx.x * kWarpsPerBlock + threadIdx.y;
  if (s >= N) return;
  const uint32_t id = sorted_ids[s];
  if ((s > 0 && sorted_ids[s - 1] == id) || int64_t(id) == padding_idx) return;
  int lo = s + 1, hi = N;  // binary search for the end of the run: long runs cost log N
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (sorted_ids[mid] == id) lo = mid + 1;
    else hi = mid;
  }
  const int end = lo;

  for (int d = threadIdx.x; d < D; d += 32) {
    float acc = 0.f;
    int j = s;
    for (; j + 4 <= end; j += 4) {
      float g[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) g[u] = grad_out[size_t(sorted_pos[j + u]) * D + d];
#pragma unroll
      for (int u = 0; u < 4; ++u) acc += g[u];
    }
    for (; j < end; ++j) acc += grad_out[size_t(sorted_pos[j]) * D + d];
    grad_table[size_t(id) * D + d] = acc;
  }
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

  dim3 block(32, kWarpsPerBlock);
  embedding_backward_kernel<<<(N + kWarpsPerBlock - 1) / kWarpsPerBlock, block, 0, ex.stream>>>(
      grad_out, sorted_ids.data(), sorted_pos.data(), N, D, padding_idx, grad_table);
  CUDA_CHECK_LAUNCH();
}

}  // namespace caption::cuda
