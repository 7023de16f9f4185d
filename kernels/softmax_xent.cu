#include <cstdint>

#include "kernels/softmax_xent.h"
#include "runtime/cuda_check.h"

namespace caption::cuda {

namespace {

// One warp per row, kRows rows per block: V is 1.6k-10k, so 13-80 float4 per lane, enough to
// keep loads in flight, and the reduction is a warp's shuffles, with no block-wide barrier
// (with one block of 256 threads per row, a row's 2 float4 per thread left the memory idle
// while blocks reduced: 29% of the copy rate on an H200).
constexpr int kRows = 8;
const dim3 kBlock(32, kRows);
__device__ inline int row_index() { return blockIdx.x * kRows + threadIdx.y; }
int blocks_for(int N) { return (N + kRows - 1) / kRows; }

// Running (max, sum of exp(x - max)) of an online softmax; empty is (-inf, 0). Every update
// returns early while the max is still -inf, where exp(-inf - -inf) would be NaN: an empty
// partial, or logits masked to -inf at the start of a thread's columns.
struct MaxSum {
  float m, s;
};

__device__ MaxSum combine(MaxSum a, MaxSum b) {
  float m = fmaxf(a.m, b.m);
  if (m == -INFINITY) return {m, 0.f};
  return {m, a.s * expf(a.m - m) + b.s * expf(b.m - m)};
}

__device__ MaxSum add4(MaxSum a, float4 x) {
  float m = fmaxf(a.m, fmaxf(fmaxf(x.x, x.y), fmaxf(x.z, x.w)));
  if (m == -INFINITY) return {m, 0.f};
  return {m, a.s * expf(a.m - m) + expf(x.x - m) + expf(x.y - m) + expf(x.z - m) + expf(x.w - m)};
}

__device__ MaxSum add1(MaxSum a, float x) { return combine(a, {x, 1.f}); }

// Butterfly over the warp; every lane gets the result. Fixed order, so the result does not vary
// from run to run.
__device__ MaxSum warp_reduce(MaxSum v) {
  for (int o = 16; o > 0; o >>= 1)
    v = combine(v, {__shfl_xor_sync(0xffffffffu, v.m, o), __shfl_xor_sync(0xffffffffu, v.s, o)});
  return v;
}

// A row splits into a scalar head up to the first 16-byte boundary, a float4 body and a
// scalar tail, so that any V (and any row start) gets vectorised loads.
struct RowSplit {
  int head, nvec, tail;  // tail: first column after the body
};

__device__ RowSplit split_row(const float* row, int V) {
  int head = int(((16 - (reinterpret_cast<uintptr_t>(row) & 15)) & 15) / sizeof(float));
  head = min(head, V);
  int nvec = (V - head) / 4;
  return {head, nvec, head + 4 * nvec};
}

// lse[n] for every row; loss[n] too when targets is given (0 for padding rows).
__global__ void lse_rows_kernel(const float* __restrict__ logits, const int32_t* __restrict__ targets, int N, int V,
                                float* __restrict__ loss, float* __restrict__ lse) {
  const int r = row_index(), lane = threadIdx.x;
  if (r >= N) return;  // the whole warp: nothing below waits for the block
  const float* row = logits + size_t(r) * V;
  RowSplit sp = split_row(row, V);
  const float4* body = reinterpret_cast<const float4*>(row + sp.head);
  MaxSum acc{-INFINITY, 0.f};
  for (int i = lane; i < sp.head; i += 32) acc = add1(acc, row[i]);
#pragma unroll 4
  for (int i = lane; i < sp.nvec; i += 32) acc = add4(acc, body[i]);
  for (int i = sp.tail + lane; i < V; i += 32) acc = add1(acc, row[i]);
  acc = warp_reduce(acc);
  if (lane == 0) {
    float l = acc.m + logf(acc.s);
    lse[r] = l;
    if (targets) {
      int32_t t = targets[r];
      loss[r] = t == 0 ? 0.f : l - row[t];
    }
  }
}

// dlogits = scale * (exp(logits - lse) - onehot), zero rows for padding. No __restrict__:
// dlogits may be logits; each element is read and written by the same thread.
__global__ void xent_backward_kernel(const float* logits, const int32_t* __restrict__ targets,
                                     const float* __restrict__ lse, int N, int V, float scale, const float* scale_at,
                                     float* dlogits, bool vectorise) {
  const int r = row_index(), lane = threadIdx.x;
  if (r >= N) return;
  if (scale_at) scale = *scale_at;
  const float* row = logits + size_t(r) * V;
  float* drow = dlogits + size_t(r) * V;
  int32_t t = targets[r];
  if (t == 0) {
    for (int i = lane; i < V; i += 32) drow[i] = 0.f;
    return;
  }
  float l = lse[r];
  auto grad = [&](float x, int col) { return scale * (expf(x - l) - (col == t ? 1.f : 0.f)); };
  // Both rows share their offset within 16 bytes when vectorise is set, so one split fits both.
  RowSplit sp = vectorise ? split_row(row, V) : RowSplit{V, 0, V};
  for (int i = lane; i < sp.head; i += 32) drow[i] = grad(row[i], i);
  const float4* body = reinterpret_cast<const float4*>(row + sp.head);
  float4* dbody = reinterpret_cast<float4*>(drow + sp.head);
#pragma unroll 4
  for (int i = lane; i < sp.nvec; i += 32) {
    float4 x = body[i];
    int c = sp.head + 4 * i;
    dbody[i] = make_float4(grad(x.x, c), grad(x.y, c + 1), grad(x.z, c + 2), grad(x.w, c + 3));
  }
  for (int i = sp.tail + lane; i < V; i += 32) drow[i] = grad(row[i], i);
}

}  // namespace

void softmax_xent_forward(const Exec& ex, const float* logits, const int32_t* targets, int N, int V,
                          float* loss, float* lse) {
  if (N == 0) return;
  lse_rows_kernel<<<blocks_for(N), kBlock, 0, ex.stream>>>(logits, targets, N, V, loss, lse);
  CUDA_CHECK_LAUNCH();
}

void softmax_xent_backward(const Exec& ex, const float* logits, const int32_t* targets, const float* lse,
                           int N, int V, float scale, float* dlogits, const float* scale_at) {
  if (N == 0) return;
  // Rows advance by the same V floats in both buffers, so equal offsets mod 16 bytes at the
  // start hold for every row.
  bool vectorise = ((reinterpret_cast<uintptr_t>(logits) ^ reinterpret_cast<uintptr_t>(dlogits)) & 15) == 0;
  xent_backward_kernel<<<blocks_for(N), kBlock, 0, ex.stream>>>(logits, targets, lse, N, V, scale, scale_at,
                                                                dlogits, vectorise);
  CUDA_CHECK_LAUNCH();
}

void logsumexp_rows(const Exec& ex, const float* logits, int N, int V, float* lse) {
  if (N == 0) return;
  lse_rows_kernel<<<blocks_for(N), kBlock, 0, ex.stream>>>(logits, nullptr, N, V, nullptr, lse);
  CUDA_CHECK_LAUNCH();
}

}  // namespace caption::cuda
