#include <algorithm>
#include <cstdint>

#include "kernels/grad_norm.h"
#include "runtime/cuda_check.h"
#include "runtime/memory_pool.h"

namespace caption::cuda {

namespace {

constexpr int kThreads = 256;
// The partial count depends only on n (and the buffer's offset within 16 bytes), never on the
// GPU, so the summation order and the result are the same on every run and every device.
constexpr size_t kMaxBlocks = 1024;

// Fixed-order block sum (butterfly in each warp, then warp sums in order); valid in thread 0.
__device__ float block_sum(float v) {
  __shared__ float warp_sums[kThreads / 32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    v = warp_sums[0];
    for (int w = 1; w < kThreads / 32; ++w) v += warp_sums[w];
  }
  return v;
}

// The head/body/tail split used by both kernels: scalars up to the first 16-byte boundary,
// float4s, scalars after.
struct Split {
  size_t head, nvec;
};

Split split(const void* x, size_t n) {
  size_t head = std::min(n, ((16 - (reinterpret_cast<uintptr_t>(x) & 15)) & 15) / sizeof(float));
  return {head, (n - head) / 4};
}

size_t blocks_for(Split s, size_t n) {
  size_t work = std::max(s.nvec, n - 4 * s.nvec);
  return std::min(kMaxBlocks, (work + kThreads - 1) / kThreads);
}

// Pass 1: each block's sum of squares into partials[blockIdx.x].
__global__ void sumsq_partials_kernel(const float* __restrict__ x, size_t n, size_t head, size_t nvec,
                                      float* __restrict__ partials) {
  size_t stride = size_t(gridDim.x) * blockDim.x;
  size_t tid = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const float4* x4 = reinterpret_cast<const float4*>(x + head);
  float acc = 0.f;
  // Four loads in flight per thread (the sums still go in order): a 16M-float call gives each of
  // the 262,144 threads 16 float4, and by our count one load at a time per thread is about what
  // an H200 needs in flight to stay busy, with no margin (not yet measured).
#pragma unroll 4
  for (size_t i = tid; i < nvec; i += stride) {
    float4 a = x4[i];
    acc += a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w;
  }
  size_t body_end = head + 4 * nvec, scalars = n - 4 * nvec;
  for (size_t j = tid; j < scalars; j += stride) {
    float a = x[j < head ? j : body_end + (j - head)];
    acc += a * a;
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

// Pass 2: one block sums the partials (each thread a fixed strided subset) and takes the root.
__global__ void final_norm_kernel(const float* __restrict__ partials, int count, float* __restrict__ norm) {
  float acc = 0.f;
  for (int i = threadIdx.x; i < count; i += kThreads) acc += partials[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) *norm = sqrtf(acc);
}

__global__ void scale_kernel(float* __restrict__ x, size_t n, size_t head, size_t nvec, float s) {
  size_t stride = size_t(gridDim.x) * blockDim.x;
  size_t tid = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  float4* x4 = reinterpret_cast<float4*>(x + head);
#pragma unroll 4
  for (size_t i = tid; i < nvec; i += stride) {
    float4 a = x4[i];
    x4[i] = make_float4(a.x * s, a.y * s, a.z * s, a.w * s);
  }
  size_t body_end = head + 4 * nvec, scalars = n - 4 * nvec;
  for (size_t j = tid; j < scalars; j += stride) x[j < head ? j : body_end + (j - head)] *= s;
}

}  // namespace

float global_norm(const Exec& ex, const float* x, size_t n) {
  if (n == 0) return 0.f;
  Split s = split(x, n);
  size_t blocks = blocks_for(s, n);
  // partials[0, blocks) and the norm after them: one pool allocation, no cudaMalloc.
  PoolBuffer<float> scratch(*ex.pool, blocks + 1, ex.stream);
  sumsq_partials_kernel<<<unsigned(blocks), kThreads, 0, ex.stream>>>(x, n, s.head, s.nvec, scratch.data());
  CUDA_CHECK_LAUNCH();
  final_norm_kernel<<<1, kThreads, 0, ex.stream>>>(scratch.data(), int(blocks), scratch.data() + blocks);
  CUDA_CHECK_LAUNCH();
  float norm = 0.f;
  CUDA_CHECK_THROW(cudaMemcpyAsync(&norm, scratch.data() + blocks, sizeof(float), cudaMemcpyDeviceToHost, ex.stream));
  CUDA_CHECK_THROW(cudaStreamSynchronize(ex.stream));
  return norm;
}

void scale(const Exec& ex, float* x, size_t n, float s) {
  if (n == 0) return;
  Split sp = split(x, n);
  scale_kernel<<<unsigned(blocks_for(sp, n)), kThreads, 0, ex.stream>>>(x, n, sp.head, sp.nvec, s);
  CUDA_CHECK_LAUNCH();
}

}  // namespace caption::cuda
