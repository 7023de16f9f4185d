#include "kernels/lstm.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/parallel.h"
#include "kernels/vec_math.h"

namespace caption::cpu {
namespace {

// Rows (batch entries) of one step are independent: f(b) for every row, on threads in groups
// of rows when the step costs at least kParallelCost (a smaller step is done before a worker
// has woken up). Costs count vectorised sigmoid/tanh values, the bulk of the work: 5H per row
// forward, and about 2H backward (H tanh and 4H multiply-adds). Each row is done whole by one
// thread, so results do not depend on the thread count.
constexpr int kItemCost = 16384;
constexpr size_t kParallelCost = 81920;

template <class F>
void for_batch_rows(int B, int row_cost, F f) {
  parallel_rows(size_t(B), size_t(row_cost), kItemCost, kParallelCost, [&](size_t b) { f(int(b)); });
}

// Adds both biases to one step's pre-activations, activates them in place and updates the
// cell: rows are batch entries with strides ldg (gates) and lds (c_prev, c, h); c_prev null
// means zero state. c may alias c_prev and is written after it is read. The gate
// nonlinearities (4H exp per row and step, the LSTM's non-GEMM cost) are the vector ones of
// kernels/vec_math.h.
void cell_forward(int B, int H, const float* b_ih, const float* b_hh, float* gates, int ldg,
                  const float* c_prev, float* c, float* h, int lds) {
  for_batch_rows(B, 5 * H, [=](int b) {
    float* g = gates + size_t(b) * ldg;
    for (int k = 0; k < 4 * H; ++k) g[k] = g[k] + b_ih[k] + b_hh[k];
    vec::map(g, g, 2 * H, vec::sigmoid);              // i, f
    vec::map(g + 2 * H, g + 2 * H, H, vec::tanh);     // g
    vec::map(g + 3 * H, g + 3 * H, H, vec::sigmoid);  // o
    const float *gi = g, *gf = g + H, *gg = g + 2 * H, *go = g + 3 * H;
    float* cb = c + size_t(b) * lds;
    float* hb = h + size_t(b) * lds;
    if (c_prev) {
      const float* cp = c_prev + size_t(b) * lds;
      for (int j = 0; j < H; ++j) cb[j] = gf[j] * cp[j] + gi[j] * gg[j];
    } else {
      for (int j = 0; j < H; ++j) cb[j] = gi[j] * gg[j];
    }
    vec::map(cb, hb, H, vec::tanh);
    for (int j = 0; j < H; ++j) hb[j] *= go[j];
  });
}

// Gradients of one row (batch entry) of one step. dc holds dL/dc_t from step t+1 on entry
// (zero at the last step) and dL/dc_{t-1} on exit; dpre gets dL/d(pre-activation) of i,f,g,o.
void cell_backward(int H, const float* __restrict gates, const float* __restrict c_prev,
                   const float* __restrict tanh_c, const float* __restrict dh, float* __restrict dc,
                   float* __restrict dpre) {
  const float *gi = gates, *gf = gates + H, *gg = gates + 2 * H, *go = gates + 3 * H;
  for (int j = 0; j < H; ++j) {
    float dcj = dc[j] + dh[j] * go[j] * (1.f - tanh_c[j] * tanh_c[j]);
    dpre[j] = dcj * gg[j] * gi[j] * (1.f - gi[j]);
    dpre[H + j] = dcj * c_prev[j] * gf[j] * (1.f - gf[j]);
    dpre[2 * H + j] = dcj * gi[j] * (1.f - gg[j] * gg[j]);
    dpre[3 * H + j] = dh[j] * tanh_c[j] * go[j] * (1.f - go[j]);
    dc[j] = dcj * gf[j];
  }
}

}  // namespace

void lstm_forward(const LstmShape& s, const float* x, const LstmWeights& w, const LstmActivations& act) {
  const int B = s.B, T = s.T, I = s.I, H = s.H, G = 4 * H;
  if (B == 0 || T == 0) return;
  // Input projection of every timestep at once: gates[B*T, 4H] = x W_ih^T (bias added per step).
  gemm(Trans::N, Trans::T, B * T, G, I, 1.f, x, I, w.w_ih, I, 0.f, act.gates, G);
  for (int t = 0; t < T; ++t) {
    float* gates_t = act.gates + size_t(t) * G;  // row b of step t is b*T*4H further on
    const float* c_prev = t > 0 ? act.c + size_t(t - 1) * H : nullptr;
    if (t > 0)  // h0 = 0: step 0 has no recurrent term
      gemm(Trans::N, Trans::T, B, G, H, 1.f, act.h + size_t(t - 1) * H, T * H, w.w_hh, H, 1.f, gates_t,
           T * G);
    cell_forward(B, H, w.b_ih, w.b_hh, gates_t, T * G, c_prev, act.c + size_t(t) * H, act.h + size_t(t) * H,
                 T * H);
  }
}

void lstm_backward(const LstmShape& s, const float* x, const LstmWeights& w, const LstmActivations& act,
                   float* dh, float* dx, const LstmGrads& g) {
  const int B = s.B, T = s.T, I = s.I, H = s.H, G = 4 * H;
  const size_t rows = size_t(B) * T;
  if (rows == 0) {
    std::fill_n(g.w_ih, size_t(G) * I, 0.f);
    std::fill_n(g.w_hh, size_t(G) * H, 0.f);
    std::fill_n(g.b_ih, G, 0.f);
    std::fill_n(g.b_hh, G, 0.f);
    return;
  }
  // Scratch left uninitialised (every element is written before it is read): zero-filling the
  // B*T*4H floats would cost a noticeable share of a step.
  std::unique_ptr<float[]> dpre(new float[rows * G]);  // pre-activation gate gradients, [B,T,4H]
  std::vector<float> dc(size_t(B) * H, 0.f);           // cell gradient carried from step t+1 to t
  const std::vector<float> zero_c(H, 0.f);
  for (int t = T - 1; t >= 0; --t) {
    for_batch_rows(B, 2 * H, [&](int b) {
      thread_local std::vector<float> tanh_c;
      tanh_c.resize(H);
      const size_t row = size_t(b) * T + t;
      const float* gt = act.gates + row * G;
      const float* ct = act.c + row * H;
      vec::map(ct, tanh_c.data(), H, vec::tanh);  // recomputed rather than stored by forward
      // dh includes the recurrent term added at step t+1.
      cell_backward(H, gt, t > 0 ? ct - H : zero_c.data(), tanh_c.data(), dh + row * H,
                    dc.data() + size_t(b) * H, dpre.get() + row * G);
    });
    if (t > 0)  // dh_{t-1} += dpre_t W_hh
      gemm(Trans::N, Trans::N, B, H, G, 1.f, dpre.get() + size_t(t) * G, T * G, w.w_hh, H, 1.f,
           dh + size_t(t - 1) * H, T * H);
  }
  // Weight gradients over all timesteps at once. dW_hh pairs dpre_t with h_{t-1}: a copy of h
  // shifted one step later (zero at t = 0) turns the sum over t into one GEMM over B*T rows.
  std::unique_ptr<float[]> h_prev(new float[rows * H]);
  for (int b = 0; b < B; ++b) {
    float* dst = h_prev.get() + size_t(b) * T * H;
    std::fill_n(dst, H, 0.f);
    std::copy_n(act.h + size_t(b) * T * H, size_t(T - 1) * H, dst + H);
  }
  gemm(Trans::T, Trans::N, G, I, int(rows), 1.f, dpre.get(), G, x, I, 0.f, g.w_ih, I);
  gemm(Trans::T, Trans::N, G, H, int(rows), 1.f, dpre.get(), G, h_prev.get(), H, 0.f, g.w_hh, H);
  std::fill_n(g.b_ih, G, 0.f);
  for (size_t r = 0; r < rows; ++r) {
    const float* dp = dpre.get() + r * G;
    for (int k = 0; k < G; ++k) g.b_ih[k] += dp[k];
  }
  std::copy_n(g.b_ih, G, g.b_hh);
  if (dx) gemm(Trans::N, Trans::N, int(rows), I, G, 1.f, dpre.get(), G, w.w_ih, I, 0.f, dx, I);
}

void lstm_step(int B, int I, int H, const float* x, const LstmWeights& w, float* h, float* c, float* gates) {
  const int G = 4 * H;
  if (B == 0) return;
  gemm(Trans::N, Trans::T, B, G, I, 1.f, x, I, w.w_ih, I, 0.f, gates, G);
  gemm(Trans::N, Trans::T, B, G, H, 1.f, h, H, w.w_hh, H, 1.f, gates, G);
  cell_forward(B, H, w.b_ih, w.b_hh, gates, G, c, c, h, H);
}

}  // namespace caption::cpu
