#include <algorithm>
#include <stdexcept>

#include "kernels/gemm.h"
#include "kernels/lstm.h"
#include "runtime/cuda_check.h"
#include "runtime/memory_pool.h"

namespace caption::cuda {
namespace {

constexpr int kCellThreads = 128;

__device__ __forceinline__ float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }

// Launch shape of the per-step kernels: x covers the hidden units, y the batch rows.
dim3 cell_grid(int B, int H) { return dim3((H + kCellThreads - 1) / kCellThreads, B); }

// One thread per (batch row b, hidden unit j) of one step: adds both biases to the four
// pre-activations, activates them in place and updates the cell. Row b of gates starts at
// b*ldg, of c_prev/c/h at b*lds, so the same kernel serves the strided steps of a batch-first
// sequence and the packed state of lstm_step. c_prev null means zero state. c may alias
// c_prev: each element is read and then written by the same thread, hence no __restrict__.
__global__ void cell_forward_kernel(int H, const float* __restrict__ b_ih, const float* __restrict__ b_hh,
                                    float* __restrict__ gates, int ldg, const float* c_prev, float* c,
                                    float* __restrict__ h, int lds) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= H) return;
  const int b = blockIdx.y;
  float* g = gates + size_t(b) * ldg + j;
  const float gi = sigmoid(g[0] + b_ih[j] + b_hh[j]);
  const float gf = sigmoid(g[H] + b_ih[H + j] + b_hh[H + j]);
  const float gg = tanhf(g[2 * H] + b_ih[2 * H + j] + b_hh[2 * H + j]);
  const float go = sigmoid(g[3 * H] + b_ih[3 * H + j] + b_hh[3 * H + j]);
  g[0] = gi;
  g[H] = gf;
  g[2 * H] = gg;
  g[3 * H] = go;
  const size_t s = size_t(b) * lds + j;
  const float cn = c_prev ? gf * c_prev[s] + gi * gg : gi * gg;
  c[s] = cn;
  h[s] = go * tanhf(cn);
}

// Gradients of one step, one thread per (b, j). dh_t already holds the recurrent term from step
// t+1. dc [B,H] carries dL/dc from step t+1 in and dL/dc_{t-1} out; dc_in null means zero (last
// step). c_prev null means c_{-1} = 0. dpre receives dL/d(pre-activation) of i,f,g,o.
__global__ void cell_backward_kernel(int H, int ldg, int lds, const float* __restrict__ gates,
                                     const float* __restrict__ c, const float* __restrict__ c_prev,
                                     const float* __restrict__ dh, const float* dc_in, float* dc_out,
                                     float* __restrict__ dpre) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= H) return;
  const int b = blockIdx.y;
  const size_t gr = size_t(b) * ldg + j, s = size_t(b) * lds + j, d = size_t(b) * H + j;
  const float gi = gates[gr], gf = gates[gr + H], gg = gates[gr + 2 * H], go = gates[gr + 3 * H];
  const float tc = tanhf(c[s]);
  const float dht = dh[s];
  const float dcj = (dc_in ? dc_in[d] : 0.f) + dht * go * (1.f - tc * tc);
  const float cp = c_prev ? c_prev[s] : 0.f;
  dpre[gr] = dcj * gg * gi * (1.f - gi);
  dpre[gr + H] = dcj * cp * gf * (1.f - gf);
  dpre[gr + 2 * H] = dcj * gi * (1.f - gg * gg);
  dpre[gr + 3 * H] = dht * tc * go * (1.f - go);
  dc_out[d] = dcj * gf;
}

// Bias gradients: column sums of dpre [rows, n], written to both outputs. A block owns 32
// columns; its 32 thread rows stride over the rows and combine in shared memory in a fixed
// order, so the result is deterministic (no atomics).
__global__ void column_sum_kernel(int rows, int n, const float* __restrict__ a, float* __restrict__ out0,
                                  float* __restrict__ out1) {
  __shared__ float part[32][33];
  const int col = blockIdx.x * 32 + threadIdx.x;
  float s = 0.f;
  if (col < n)
    for (int r = threadIdx.y; r < rows; r += 32) s += a[size_t(r) * n + col];
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && col < n) {
    float total = 0.f;
    for (int y = 0; y < 32; ++y) total += part[y][threadIdx.x];
    out0[col] = total;
    out1[col] = total;
  }
}

}  // namespace

void lstm_forward(const Exec& ex, const LstmShape& s, const float* x, const LstmWeights& w,
                  const LstmActivations& act) {
  const int B = s.B, T = s.T, I = s.I, H = s.H, G = 4 * H;
  if (B == 0 || T == 0 || H == 0) return;
  // Input projection of every timestep at once: gates[B*T, 4H] = x W_ih^T (biases added per step).
  gemm(ex.blas, Trans::N, Trans::T, B * T, G, I, 1.f, x, I, w.w_ih, I, 0.f, act.gates, G);
  for (int t = 0; t < T; ++t) {
    // Row b of step t is b*T*4H further on. h0 = 0: step 0 has no recurrent term.
    float* gates_t = act.gates + size_t(t) * G;
    if (t > 0)
      gemm(ex.blas, Trans::N, Trans::T, B, G, H, 1.f, act.h + size_t(t - 1) * H, T * H, w.w_hh, H, 1.f,
           gates_t, T * G);
    cell_forward_kernel<<<cell_grid(B, H), kCellThreads, 0, ex.stream>>>(
        H, w.b_ih, w.b_hh, gates_t, T * G, t > 0 ? act.c + size_t(t - 1) * H : nullptr, act.c + size_t(t) * H,
        act.h + size_t(t) * H, T * H);
    CUDA_CHECK_LAUNCH();
  }
}

void lstm_backward(const Exec& ex, const LstmShape& s, const float* x, const LstmWeights& w,
                   const LstmActivations& act, float* dh, float* dx, const LstmGrads& g) {
  const int B = s.B, T = s.T, I = s.I, H = s.H, G = 4 * H;
  const int rows = B * T;
  if (rows == 0 || H == 0) {
    CUDA_CHECK_THROW(cudaMemsetAsync(g.w_ih, 0, sizeof(float) * G * I, ex.stream));
    CUDA_CHECK_THROW(cudaMemsetAsync(g.w_hh, 0, sizeof(float) * G * H, ex.stream));
    CUDA_CHECK_THROW(cudaMemsetAsync(g.b_ih, 0, sizeof(float) * G, ex.stream));
    CUDA_CHECK_THROW(cudaMemsetAsync(g.b_hh, 0, sizeof(float) * G, ex.stream));
    return;
  }
  PoolBuffer<float> dpre(*ex.pool, size_t(rows) * G, ex.stream);  // [B,T,4H]
  PoolBuffer<float> dc(*ex.pool, size_t(B) * H, ex.stream);       // carried dL/dc
  for (int t = T - 1; t >= 0; --t) {
    cell_backward_kernel<<<cell_grid(B, H), kCellThreads, 0, ex.stream>>>(
        H, T * G, T * H, act.gates + size_t(t) * G, act.c + size_t(t) * H,
        t > 0 ? act.c + size_t(t - 1) * H : nullptr, dh + size_t(t) * H, t < T - 1 ? dc.data() : nullptr,
        dc.data(), dpre.data() + size_t(t) * G);
    CUDA_CHECK_LAUNCH();
    if (t > 0)  // dh_{t-1} += dpre_t W_hh
      gemm(ex.blas, Trans::N, Trans::N, B, H, G, 1.f, dpre.data() + size_t(t) * G, T * G, w.w_hh, H, 1.f,
           dh + size_t(t - 1) * H, T * H);
  }
  // dW_hh = sum_t dpre_t^T h_{t-1} as one GEMM over B*T rows against h shifted one step later
  // (zero at t = 0): per batch row, steps 0..T-2 of h move to 1..T-1, step 0 is cleared.
  PoolBuffer<float> h_prev(*ex.pool, size_t(rows) * H, ex.stream);
  const size_t pitch = sizeof(float) * T * H;
  CUDA_CHECK_THROW(cudaMemset2DAsync(h_prev.data(), pitch, 0, sizeof(float) * H, B, ex.stream));
  if (T > 1)
    CUDA_CHECK_THROW(cudaMemcpy2DAsync(h_prev.data() + H, pitch, act.h, pitch, sizeof(float) * (T - 1) * H, B,
                                       cudaMemcpyDeviceToDevice, ex.stream));
  gemm(ex.blas, Trans::T, Trans::N, G, I, rows, 1.f, dpre.data(), G, x, I, 0.f, g.w_ih, I);
  gemm(ex.blas, Trans::T, Trans::N, G, H, rows, 1.f, dpre.data(), G, h_prev.data(), H, 0.f, g.w_hh, H);
  column_sum_kernel<<<(G + 31) / 32, dim3(32, 32), 0, ex.stream>>>(rows, G, dpre.data(), g.b_ih, g.b_hh);
  CUDA_CHECK_LAUNCH();
  if (dx) gemm(ex.blas, Trans::N, Trans::N, rows, I, G, 1.f, dpre.data(), G, w.w_ih, I, 0.f, dx, I);
}

// Three launches per step: two GEMMs (cuBLAS picks GEMV-like kernels for small B) and the cell.
void lstm_step_gemm(const Exec& ex, int B, int I, int H, const float* x, const LstmWeights& w, float* h, float* c,
                    float* gates) {
  const int G = 4 * H;
  if (B == 0 || H == 0) return;
  gemm(ex.blas, Trans::N, Trans::T, B, G, I, 1.f, x, I, w.w_ih, I, 0.f, gates, G);
  gemm(ex.blas, Trans::N, Trans::T, B, G, H, 1.f, h, H, w.w_hh, H, 1.f, gates, G);
  cell_forward_kernel<<<cell_grid(B, H), kCellThreads, 0, ex.stream>>>(H, w.b_ih, w.b_hh, gates, G, c, c, h,
                                                                       H);
  CUDA_CHECK_LAUNCH();
}

namespace {

// The fused step: a block owns kFusedUnits hidden units (their 4 gate rows each: 32 rows, 4 per
// warp) for kFusedRows batch rows, whose x and h it stages in shared memory. A warp computes a
// gate row's two products for all the block's batch rows at once, lanes striding over the
// weight row (coalesced) and combining by shuffles in a fixed order; then one thread per
// (unit, row) applies the nonlinearities and updates c. h is written by a second kernel, once
// every block has read the old one.
constexpr int kFusedUnits = 8;
constexpr int kFusedRows = 8;
constexpr int kFusedThreads = 256;  // 8 warps x 4 gate rows = 4 * kFusedUnits
static_assert(kFusedThreads / 32 * 4 == 4 * kFusedUnits, "each warp takes four gate rows");
static_assert(kFusedUnits * kFusedRows <= kFusedThreads, "one thread per (unit, row) for the cell");

constexpr size_t kFusedMaxSmem = 48 * 1024;  // dynamic shared memory without an opt-in attribute
size_t fused_smem_bytes(int I, int H) {
  return sizeof(float) * (size_t(kFusedRows) * (I + H) + size_t(4) * kFusedUnits * kFusedRows);
}

__global__ void fused_step_kernel(int B, int I, int H, const float* __restrict__ x, const float* __restrict__ w_ih,
                                  const float* __restrict__ w_hh, const float* __restrict__ b_ih,
                                  const float* __restrict__ b_hh, const float* __restrict__ h, float* c,
                                  float* __restrict__ gates) {
  extern __shared__ float smem[];
  float* xs = smem;                    // [kFusedRows][I]
  float* hs = xs + kFusedRows * I;     // [kFusedRows][H]
  float* pre = hs + kFusedRows * H;    // [4 * kFusedUnits][kFusedRows]
  const int j0 = blockIdx.x * kFusedUnits, b0 = blockIdx.y * kFusedRows;
  const int rows = min(kFusedRows, B - b0);
  for (int i = threadIdx.x; i < kFusedRows * I; i += blockDim.x)
    xs[i] = i / I < rows ? x[size_t(b0) * I + i] : 0.f;
  for (int i = threadIdx.x; i < kFusedRows * H; i += blockDim.x)
    hs[i] = i / H < rows ? h[size_t(b0) * H + i] : 0.f;
  __syncthreads();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int q = 0; q < 4; ++q) {
    const int r = warp * 4 + q;  // gate r / kFusedUnits of unit j
    const int j = j0 + r % kFusedUnits;
    float acc[kFusedRows] = {};
    if (j < H) {  // the same for the whole warp
      const size_t row = size_t(r / kFusedUnits) * H + j;
      for (int k = lane; k < I; k += 32) {
        const float wv = w_ih[row * I + k];
#pragma unroll
        for (int b = 0; b < kFusedRows; ++b) acc[b] += wv * xs[b * I + k];
      }
      for (int k = lane; k < H; k += 32) {
        const float wv = w_hh[row * H + k];
#pragma unroll
        for (int b = 0; b < kFusedRows; ++b) acc[b] += wv * hs[b * H + k];
      }
    }
#pragma unroll
    for (int b = 0; b < kFusedRows; ++b)
      for (int o = 16; o > 0; o >>= 1) acc[b] += __shfl_xor_sync(0xffffffffu, acc[b], o);
    if (lane == 0)
#pragma unroll
      for (int b = 0; b < kFusedRows; ++b) pre[r * kFusedRows + b] = acc[b];
  }
  __syncthreads();
  if (threadIdx.x >= kFusedUnits * kFusedRows) return;
  const int u = threadIdx.x % kFusedUnits, b = threadIdx.x / kFusedUnits, j = j0 + u;
  if (j >= H || b >= rows) return;
  auto preact = [&](int g) { return pre[(g * kFusedUnits + u) * kFusedRows + b] + b_ih[g * H + j] + b_hh[g * H + j]; };
  const float gi = sigmoid(preact(0)), gf = sigmoid(preact(1)), gg = tanhf(preact(2)), go = sigmoid(preact(3));
  float* g = gates + size_t(b0 + b) * 4 * H + j;
  g[0] = gi;
  g[H] = gf;
  g[2 * H] = gg;
  g[3 * H] = go;
  const size_t s = size_t(b0 + b) * H + j;
  c[s] = gf * c[s] + gi * gg;
}

// h = o * tanh(c), after the fused kernel.
__global__ void step_output_kernel(int B, int H, const float* __restrict__ gates, const float* __restrict__ c,
                                   float* __restrict__ h) {
  const size_t n = size_t(B) * H;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    h[i] = gates[(i / H) * 4 * H + 3 * H + i % H] * tanhf(c[i]);
}

}  // namespace

bool lstm_step_fusable(int B, int I, int H) {
  return B <= kLstmFusedStepMaxRows && fused_smem_bytes(I, H) <= kFusedMaxSmem;
}

void lstm_step_fused(const Exec& ex, int B, int I, int H, const float* x, const LstmWeights& w, float* h, float* c,
                     float* gates) {
  if (B == 0 || H == 0) return;
  if (fused_smem_bytes(I, H) > kFusedMaxSmem) throw std::invalid_argument("lstm_step_fused: input and hidden too wide");
  const dim3 grid((H + kFusedUnits - 1) / kFusedUnits, (B + kFusedRows - 1) / kFusedRows);
  fused_step_kernel<<<grid, kFusedThreads, fused_smem_bytes(I, H), ex.stream>>>(B, I, H, x, w.w_ih, w.w_hh, w.b_ih,
                                                                               w.b_hh, h, c, gates);
  CUDA_CHECK_LAUNCH();
  const size_t n = size_t(B) * H;
  step_output_kernel<<<int(std::min<size_t>((n + 255) / 256, 1024)), 256, 0, ex.stream>>>(B, H, gates, c, h);
  CUDA_CHECK_LAUNCH();
}

void lstm_step(const Exec& ex, int B, int I, int H, const float* x, const LstmWeights& w, float* h, float* c,
               float* gates) {
  if (lstm_step_fusable(B, I, H)) lstm_step_fused(ex, B, I, H, x, w, h, c, gates);
  else lstm_step_gemm(ex, B, I, H, x, w, h, c, gates);
}

}  // namespace caption::cuda
