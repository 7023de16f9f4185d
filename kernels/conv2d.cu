#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/conv2d_cudnn.h"
#include "kernels/conv2d_gemm.h"
#include "kernels/element.cuh"
#include "kernels/launch.cuh"
#include "runtime/context.h"
#include "runtime/cuda_check.h"
#include "runtime/memory_pool.h"
#include "runtime/tensor.h"

namespace caption::cuda {

namespace {

// Algorithms asking for more scratch than this are passed over (FFT variants on large images).
constexpr size_t kMaxWorkspace = size_t(256) << 20;
// Timed search: a candidate's time is the fastest of kTimedRounds rounds of kTimedCalls calls
// queued back to back, after one warm-up call. Queued calls let the host's work per call
// (descriptors, workspace) overlap the device's, as in a forward pass; the fastest round leaves
// out a slow spell.
constexpr int kTimedCalls = 3, kTimedRounds = 2;

// One call's arguments in either precision. bias is FP32 (our epilogue's); fused_bias is the one
// cuDNN's fused call and cuBLASLt's epilogue take, in y's type.
struct Call {
  DType dtype;  // F32 or BF16
  const void *x, *w, *bias, *fused_bias, *residual;
  void* y;
  bool relu, tf32;
  Layout layout;
  ConvSearch search;
  cudnnDataType_t data_type() const { return dtype == DType::F32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_BFLOAT16; }
  bool tensor_cores() const { return tf32 || dtype == DType::BF16; }
};

Call call_of(const float* x, const ConvParams& p, float* y) {
  return {DType::F32, x, p.w, p.bias, p.bias, p.residual, y, p.relu, p.tf32, p.layout, p.search};
}
Call call_of(const uint16_t* x, const ConvParamsBf16& p, uint16_t* y) {
  return {DType::BF16, x, p.w, p.bias, p.bias16, p.residual, y, p.relu, false, p.layout, p.search};
}

// The epilogue's elements: float4 (4 floats), float, or one bfloat16 (kernels/element.cuh).
template <class Vec>
constexpr int kLanes = sizeof(Vec) == sizeof(float4) ? 4 : 1;
__device__ inline float add(float a, float b) { return a + b; }
__device__ inline float4 add(float4 a, float4 b) { return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w); }
__device__ inline float relu(float a) { return fmaxf(a, 0.f); }
__device__ inline float4 relu(float4 a) { return make_float4(relu(a.x), relu(a.y), relu(a.z), relu(a.w)); }
__device__ inline float splat(float b, float) { return b; }
__device__ inline float4 splat(float b, float4) { return make_float4(b, b, b, b); }

// y = act(y + bias [+ residual]): our epilogue after cudnnConvolutionForward when cuDNN has no fused
// kernel for the case, over `n` Vecs. A float4 covers 4 channels in NHWC (K % 4 == 0) and 4 pixels
// of one channel in NCHW (P*Q % 4 == 0); `plane` is P*Q in Vecs.
template <class Vec, Layout kLayout, bool kResidual, bool kRelu>
__global__ void bias_act_kernel(Vec* y, const float* bias, const Vec* res, size_t n, int K, int plane) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    auto v = widen(y[i]);
    if constexpr (kLayout == Layout::NCHW) v = add(v, splat(bias[(i / plane) % K], v));
    else if constexpr (kLanes<Vec> == 4) v = add(v, reinterpret_cast<const float4*>(bias)[i % (K / 4)]);
    else v = add(v, bias[i % K]);
    if constexpr (kResidual) v = add(v, widen(res[i]));
    if constexpr (kRelu) v = relu(v);
    store(y[i], v);
  }
}

template <class Vec, Layout kLayout>
void launch_bias_act(const Exec& ex, const Call& c, size_t total, int K, int plane) {
  const size_t n = total / kLanes<Vec>;
  const int threads = 256;
  const int blocks = grid_for(n, threads);
  auto* y = static_cast<Vec*>(c.y);
  auto* res = static_cast<const Vec*>(c.residual);
  const auto* bias = static_cast<const float*>(c.bias);
  plane /= kLanes<Vec>;
  auto go = [&](auto kernel) { kernel<<<blocks, threads, 0, ex.stream>>>(y, bias, res, n, K, plane); };
  if (res && c.relu) go(bias_act_kernel<Vec, kLayout, true, true>);
  else if (res) go(bias_act_kernel<Vec, kLayout, true, false>);
  else if (c.relu) go(bias_act_kernel<Vec, kLayout, false, true>);
  else go(bias_act_kernel<Vec, kLayout, false, false>);
  CUDA_CHECK_LAUNCH();
}

template <Layout kLayout>
void bias_act(const Exec& ex, const ConvShape& s, const Call& c) {
  const size_t total = size_t(s.N) * s.P() * s.Q() * s.K;
  const int plane = s.P() * s.Q();
  if (c.dtype == DType::BF16) return launch_bias_act<__nv_bfloat16, kLayout>(ex, c, total, s.K, plane);
  const bool inner4 = kLayout == Layout::NCHW ? plane % 4 == 0 : s.K % 4 == 0 && aligned16(c.bias);
  if (inner4 && aligned16(c.y) && (!c.residual || aligned16(c.residual)))
    launch_bias_act<float4, kLayout>(ex, c, total, s.K, plane);
  else
    launch_bias_act<float, kLayout>(ex, c, total, s.K, plane);
}

// Everything one (shape, flags) needs: cuDNN's descriptors, the cuBLASLt plan where the timed or
// matmul search offers one, and the chosen route with its algorithm, math type (set on `conv`)
// and workspace size.
struct Plan : ConvDescriptors {
  ConvChoice choice{ConvRoute::CudnnPlain, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, 0};
  std::unique_ptr<LtMatmul> gemm;

  Plan(const ConvShape& s, const Call& c) : ConvDescriptors(s, c.layout, c.data_type(), c.relu) {}
  void choose(const ConvChoice& c, cudnnMathType_t math) {
    choice = c;
    if (c.route != ConvRoute::Gemm) CUDNN_CHECK_THROW(cudnnSetConvolutionMathType(conv, math));
  }
};

struct Key {
  int device, N, H, W, C, K, R, S, stride, pad;
  bool relu, residual, tf32;
  DType dtype;
  Layout layout;
  ConvSearch search;
  bool aligned;  // every pointer kConvGemmAlignment-aligned: the cuBLASLt route may be weighed
  auto tie() const {
    return std::tie(device, N, H, W, C, K, R, S, stride, pad, relu, residual, tf32, dtype, layout, search, aligned);
  }
  bool operator<(const Key& o) const { return tie() < o.tie(); }
};

bool aligned(const Call& c) {
  for (const void* p : {c.x, c.w, c.fused_bias, c.residual, static_cast<const void*>(c.y)})
    if (p && alignment_of(p) < kConvGemmAlignment) return false;
  return true;
}

Key key_of(const ConvShape& s, const Call& c) {
  int device = 0;
  CUDA_CHECK_THROW(cudaGetDevice(&device));
  return Key{device, s.N, s.H, s.W, s.C, s.K, s.R, s.S, s.stride, s.pad, c.relu, c.residual != nullptr, c.tf32,
             c.dtype, c.layout, c.search, aligned(c)};
}

// One status: the fused call, the plain convolution (whose success is followed by our
// epilogue), or the cuBLASLt matmul, whose refusal reads as cuDNN's (the search passes over it).
cudnnStatus_t run(const Exec& ex, const Plan& plan, const ConvShape& s, const Call& c) {
  const ConvChoice& ch = plan.choice;
  if (ch.route == ConvRoute::Gemm) {
    const cublasStatus_t st = conv_gemm(ex, *plan.gemm, s, c.dtype, c.x, c.w, c.residual, c.fused_bias, c.y);
    if (st == CUBLAS_STATUS_NOT_SUPPORTED || st == CUBLAS_STATUS_INVALID_VALUE) return CUDNN_STATUS_NOT_SUPPORTED;
    CUBLAS_CHECK_THROW(st);
    return CUDNN_STATUS_SUCCESS;
  }
  const auto algo = cudnnConvolutionFwdAlgo_t(ch.algo);
  PoolBuffer<char> ws(*ex.pool, ch.workspace, ex.stream);
  const float one = 1.f, zero = 0.f;  // scaling factors are float for float and bfloat16 data
  if (ch.route == ConvRoute::CudnnFused) {
    // Without a residual, z is y itself scaled by alpha2 = 0. cuDNN still reads z (on an H200,
    // compute-sanitizer initcheck saw it convert the layout of a tensor nothing had written, and
    // z is the only such input), and 0 * NaN is NaN, so y is zeroed first.
    const float alpha2 = c.residual ? 1.f : 0.f;
    if (!c.residual)
      CUDA_CHECK_THROW(
          cudaMemsetAsync(c.y, 0, size_t(s.N) * s.P() * s.Q() * s.K * dtype_size(c.dtype), ex.stream));
    return cudnnConvolutionBiasActivationForward(ex.dnn, &one, plan.x, c.x, plan.w, c.w, plan.conv, algo, ws.data(),
                                                 ch.workspace, &alpha2, plan.y, c.residual ? c.residual : c.y,
                                                 plan.bias, c.fused_bias, plan.act, plan.y, c.y);
  }
  const cudnnStatus_t st = cudnnConvolutionForward(ex.dnn, &one, plan.x, c.x, plan.w, c.w, plan.conv, algo,
                                                   ws.data(), ch.workspace, &zero, plan.y, c.y);
  if (st == CUDNN_STATUS_SUCCESS) {
    if (c.layout == Layout::NCHW) bias_act<Layout::NCHW>(ex, s, c);
    else bias_act<Layout::NHWC>(ex, s, c);
  }
  return st;
}

bool unsupported(cudnnStatus_t st) {
  const int category = CUDNN_STATUS_CATEGORY(st);
  return category == CUDNN_STATUS_NOT_SUPPORTED || category == CUDNN_STATUS_BAD_PARAM;
}

struct Candidate {
  ConvChoice choice;
  cudnnMathType_t math;
};

// cuDNN's heuristic ranking, fused calls before plain ones: every (algorithm, call) that the
// flags allow and whose workspace fits. cuDNN only knows at call time whether the fused kernel
// exists for a case (identity activation, for one, is IMPLICIT_PRECOMP_GEMM only), so these are
// candidates until a call succeeds. Where the cuBLASLt matmul serves the shape (NHWC) and the
// pointers are aligned for it, the timed search adds it last and the matmul search puts it first.
std::vector<Candidate> candidates(const Exec& ex, Plan& plan, const ConvShape& s, const Call& call) {
  // CUDNN_DEFAULT_MATH permits TF32 on Ampere and later; FMA math is the strict FP32 setting.
  // bfloat16 is for tensor cores.
  const bool tensor_cores = call.tensor_cores();
  CUDNN_CHECK_THROW(cudnnSetConvolutionMathType(plan.conv, tensor_cores ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int count = 0;
  CUDNN_CHECK_THROW(cudnnGetConvolutionForwardAlgorithm_v7(ex.dnn, plan.x, plan.w, plan.conv, plan.y,
                                                           CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf));
  std::vector<Candidate> out;
  for (bool fused : {true, false})
    for (int i = 0; i < count; ++i) {
      const cudnnConvolutionFwdAlgoPerf_t& c = perf[i];
      if (c.status != CUDNN_STATUS_SUCCESS) continue;
      const bool tensor_op = c.mathType == CUDNN_TENSOR_OP_MATH || c.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
      if (tensor_op && !tensor_cores) continue;
      if (fused && !call.relu && c.algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM) continue;
      const cudnnMathType_t math = tensor_cores ? c.mathType : CUDNN_FMA_MATH;
      CUDNN_CHECK_THROW(cudnnSetConvolutionMathType(plan.conv, math));
      size_t bytes = 0;
      const cudnnStatus_t st =
          cudnnGetConvolutionForwardWorkspaceSize(ex.dnn, plan.x, plan.w, plan.conv, plan.y, c.algo, &bytes);
      if (unsupported(st) || (st == CUDNN_STATUS_SUCCESS && bytes > kMaxWorkspace)) continue;
      CUDNN_CHECK_THROW(st);
      out.push_back({{fused ? ConvRoute::CudnnFused : ConvRoute::CudnnPlain, int(c.algo), bytes}, math});
    }
  if (call.search != ConvSearch::Heuristic && aligned(call))
    if (const auto spec = conv_gemm_spec(s, call.layout, call.dtype, call.tf32, call.relu, call.residual != nullptr))
      if ((plan.gemm = LtMatmul::plan(ex.blas, *spec))) {
        const size_t workspace = plan.gemm->workspace() + conv_gemm_scratch(s, call.dtype);
        const Candidate matmul{{ConvRoute::Gemm, -1, workspace}, CUDNN_DEFAULT_MATH};
        out.insert(call.search == ConvSearch::Matmul ? out.begin() : out.end(), matmul);
      }
  return out;
}

// Milliseconds per call with the plan's current choice (the caller has made the warm-up call).
float timed_ms(const Exec& ex, const Plan& plan, const ConvShape& s, const Call& c) {
  Event start(Device::CUDA, true), stop(Device::CUDA, true);
  float best = 0;
  for (int round = 0; round < kTimedRounds; ++round) {
    start.record(ex.stream);
    for (int i = 0; i < kTimedCalls; ++i) CUDNN_CHECK_THROW(run(ex, plan, s, c));
    stop.record(ex.stream);
    stop.synchronize();
    const float ms = stop.elapsed_ms_since(start) / kTimedCalls;
    if (round == 0 || ms < best) best = ms;
  }
  return best;
}

// Builds the plan and leaves y computed with it. Heuristic, Matmul: the first candidate that runs
// wins.
// Timed: every candidate that runs is timed and the fastest is run once more, last, so that y
// is its result.
std::unique_ptr<Plan> make_plan(const Exec& ex, const ConvShape& s, const Call& c) {
  auto plan = std::make_unique<Plan>(s, c);
  const Candidate* best = nullptr;
  float best_ms = 0;
  const std::vector<Candidate> all = candidates(ex, *plan, s, c);
  for (const Candidate& cand : all) {
    plan->choose(cand.choice, cand.math);
    const cudnnStatus_t st = run(ex, *plan, s, c);
    if (unsupported(st)) continue;
    CUDNN_CHECK_THROW(st);
    if (c.search != ConvSearch::Timed) return plan;  // the first that runs
    const float ms = timed_ms(ex, *plan, s, c);
    if (!best || ms < best_ms) best = &cand, best_ms = ms;
  }
  if (!best) throw CudaError("conv2d: no cuDNN algorithm for this shape");
  plan->choose(best->choice, best->math);
  if (best->choice.route != ConvRoute::Gemm) plan->gemm.reset();
  CUDNN_CHECK_THROW(run(ex, *plan, s, c));
  return plan;
}

// One lock for all: a timed search runs (and waits for the device) under it, so other threads'
// first calls of new shapes wait too, and their work does not disturb its timings much.
std::mutex plans_mutex;
std::map<Key, std::unique_ptr<Plan>> plans;  // process lifetime; descriptors are host objects

void convolve(const Exec& ex, const ConvShape& s, const Call& c) {
  if (size_t(s.N) * s.P() * s.Q() * s.K == 0) return;
  const Key key = key_of(s, c);
  std::unique_lock<std::mutex> lock(plans_mutex);
  auto it = plans.find(key);
  if (it == plans.end()) {  // the first call of a shape runs inside make_plan, under the lock
    plans.emplace(key, make_plan(ex, s, c));
    return;
  }
  const Plan& plan = *it->second;
  lock.unlock();  // plans are never erased or changed once built
  const cudnnStatus_t st = run(ex, plan, s, c);
  if (st != CUDNN_STATUS_SUCCESS && plan.choice.route == ConvRoute::Gemm)
    throw CudaError("conv2d: cuBLASLt refused the matmul planned for this shape");
  CUDNN_CHECK_THROW(st);
}

std::optional<ConvChoice> choice_of(const ConvShape& s, const Call& c) {
  const Key key = key_of(s, c);
  std::lock_guard<std::mutex> lock(plans_mutex);
  auto it = plans.find(key);
  if (it == plans.end()) return std::nullopt;
  return it->second->choice;
}

}  // namespace

void conv2d(const Exec& ex, const ConvShape& s, const float* x, const ConvParams& p, float* y) {
  convolve(ex, s, call_of(x, p, y));
}

void conv2d(const Exec& ex, const ConvShape& s, const uint16_t* x, const ConvParamsBf16& p, uint16_t* y) {
  convolve(ex, s, call_of(x, p, y));
}

std::optional<ConvChoice> conv2d_choice(const ConvShape& s, const ConvParams& p) {
  return choice_of(s, call_of(nullptr, p, nullptr));
}

std::optional<ConvChoice> conv2d_choice(const ConvShape& s, const ConvParamsBf16& p) {
  return choice_of(s, call_of(nullptr, p, nullptr));
}

}  // namespace caption::cuda
