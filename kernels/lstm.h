#pragma once
// Single-layer LSTM over a whole batch-first sequence, PyTorch semantics (gate order i,f,g,o;
// h0 = c0 = 0; both biases added). Forward: one GEMM projects the inputs of all timesteps,
// then per step one recurrent GEMM and one fused kernel for the gate nonlinearities and the
// cell update. Backward mirrors it in reverse. The inference step of small batches is one
// kernel for everything but the final h (see cuda::lstm_step_fused).
#include "runtime/exec.h"

namespace caption {

struct LstmShape {
  int B;  // batch
  int T;  // timesteps
  int I;  // input size
  int H;  // hidden size
};

// Weights in PyTorch layout: w_ih [4H,I], w_hh [4H,H], b_ih [4H], b_hh [4H].
struct LstmWeights {
  const float* w_ih;
  const float* w_hh;
  const float* b_ih;
  const float* b_hh;
};
struct LstmGrads {  // overwritten, not accumulated
  float* w_ih;
  float* w_hh;
  float* b_ih;
  float* b_hh;
};

// What forward keeps for backward. All batch-first:
// h [B,T,H] (the output), c [B,T,H] (cell states), gates [B,T,4H] (activated i,f,g,o).
struct LstmActivations {
  float* h;
  float* c;
  float* gates;
};

namespace cpu {
void lstm_forward(const LstmShape& s, const float* x, const LstmWeights& w, const LstmActivations& act);
// dh [B,T,H]: gradient of the loss w.r.t. the outputs; it is clobbered (used as scratch).
// dx [B,T,I] may be null (input gradient not needed).
void lstm_backward(const LstmShape& s, const float* x, const LstmWeights& w, const LstmActivations& act,
                   float* dh, float* dx, const LstmGrads& g);
// One step for inference: h [B,H] and c [B,H] are read and updated in place; gates [B,4H] is scratch.
void lstm_step(int B, int I, int H, const float* x, const LstmWeights& w, float* h, float* c, float* gates);
}  // namespace cpu

namespace cuda {
void lstm_forward(const Exec& ex, const LstmShape& s, const float* x, const LstmWeights& w,
                  const LstmActivations& act);
void lstm_backward(const Exec& ex, const LstmShape& s, const float* x, const LstmWeights& w,
                   const LstmActivations& act, float* dh, float* dx, const LstmGrads& g);
// Two implementations of the step; lstm_step picks fused where lstm_step_fusable says so.
// gemm: two cuBLAS products into gates, then the cell kernel. fused: one kernel for both
// products and the cell, then one for h; for the small batches of decoding, where cuBLAS's
// products are mostly launch cost (bench_kernels' lstm_step and lstm_step_gemm rows).
constexpr int kLstmFusedStepMaxRows = 128;
bool lstm_step_fusable(int B, int I, int H);
void lstm_step(const Exec& ex, int B, int I, int H, const float* x, const LstmWeights& w, float* h,
               float* c, float* gates);
void lstm_step_gemm(const Exec& ex, int B, int I, int H, const float* x, const LstmWeights& w, float* h,
                    float* c, float* gates);
void lstm_step_fused(const Exec& ex, int B, int I, int H, const float* x, const LstmWeights& w, float* h,
                     float* c, float* gates);
}  // namespace cuda

inline void lstm_forward(const Exec& ex, const LstmShape& s, const float* x, const LstmWeights& w,
                         const LstmActivations& act) {
  if (ex.cuda()) CAPTION_CUDA_CALL(cuda::lstm_forward(ex, s, x, w, act));
  else cpu::lstm_forward(s, x, w, act);
}
inline void lstm_backward(const Exec& ex, const LstmShape& s, const float* x, const LstmWeights& w,
                          const LstmActivations& act, float* dh, float* dx, const LstmGrads& g) {
  if (ex.cuda()) CAPTION_CUDA_CALL(cuda::lstm_backward(ex, s, x, w, act, dh, dx, g));
  else cpu::lstm_backward(s, x, w, act, dh, dx, g);
}
inline void lstm_step(const Exec& ex, int B, int I, int H, const float* x, const LstmWeights& w, float* h,
                      float* c, float* gates) {
  if (ex.cuda()) CAPTION_CUDA_CALL(cuda::lstm_step(ex, B, I, H, x, w, h, c, gates));
  else cpu::lstm_step(B, I, H, x, w, h, c, gates);
}

}  // namespace caption
