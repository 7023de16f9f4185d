#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "kernels/conv2d.h"
#include "runtime/cuda_check.h"
#include "runtime/memory_pool.h"

namespace caption::cuda {

namespace {

// Algorithms asking for more scratch than this are passed over (FFT variants on large images).
constexpr size_t kMaxWorkspace = size_t(256) << 20;

// y = act(y + bias [+ residual]): our epilogue after cudnnConvolutionForward when cuDNN has no fused
// kernel for the case. Vec = float4 when K is a multiple of 4 and the pointers are 16-byte aligned.
template <class Vec, bool kResidual, bool kRelu>
__global__ void bias_act_kernel(Vec* y, const Vec* bias, const Vec* res, size_t total, int Kv) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    Vec v = y[i];
    const Vec b = bias[i % Kv];
    if constexpr (sizeof(Vec) == sizeof(float4)) {
      v.x += b.x, v.y += b.y, v.z += b.z, v.w += b.w;
      if constexpr (kResidual) {
        const Vec r = res[i];
        v.x += r.x, v.y += r.y, v.z += r.z, v.w += r.w;
      }
      if constexpr (kRelu) v = make_float4(fmaxf(v.x, 0.f), fmaxf(v.y, 0.f), fmaxf(v.z, 0.f), fmaxf(v.w, 0.f));
    } else {
      v += b;
      if constexpr (kResidual) v += res[i];
      if constexpr (kRelu) v = fmaxf(v, 0.f);
    }
    y[i] = v;
  }
}

template <class Vec>
void launch_bias_act(const Exec& ex, float* y, const float* bias, const float* res, bool relu, size_t total, int K) {
  const int per = int(sizeof(Vec) / sizeof(float));
  const size_t n = total / per;
  const int threads = 256;
  const int blocks = int(std::min<size_t>((n + threads - 1) / threads, 65536));
  auto* yv = reinterpret_cast<Vec*>(y);
  auto* bv = reinterpret_cast<const Vec*>(bias);
  auto* rv = reinterpret_cast<const Vec*>(res);
  if (res && relu) bias_act_kernel<Vec, true, true><<<blocks, threads, 0, ex.stream>>>(yv, bv, rv, n, K / per);
  else if (res) bias_act_kernel<Vec, true, false><<<blocks, threads, 0, ex.stream>>>(yv, bv, rv, n, K / per);
  else if (relu) bias_act_kernel<Vec, false, true><<<blocks, threads, 0, ex.stream>>>(yv, bv, rv, n, K / per);
  else bias_act_kernel<Vec, false, false><<<blocks, threads, 0, ex.stream>>>(yv, bv, rv, n, K / per);
  CUDA_CHECK_LAUNCH();
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

void bias_act(const Exec& ex, float* y, const float* bias, const float* res, bool relu, size_t total, int K) {
  if (K % 4 == 0 && aligned16(y) && aligned16(bias) && (!res || aligned16(res)))
    launch_bias_act<float4>(ex, y, bias, res, relu, total, K);
  else
    launch_bias_act<float>(ex, y, bias, res, relu, total, K);
}

// Everything cuDNN needs for one (shape, flags): descriptors, the chosen algorithm and its math
// type (set on `conv`), its workspace size, and whether the fused bias+activation call runs it.
struct Plan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnActivationDescriptor_t act = nullptr;
  cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
  size_t workspace = 0;
  bool fused = false;

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (bias) cudnnDestroyTensorDescriptor(bias);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (act) cudnnDestroyActivationDescriptor(act);
  }
};

struct Key {
  int device, N, H, W, C, K, R, S, stride, pad;
  bool relu, residual, tf32;
  bool operator<(const Key& o) const {
    return std::tie(device, N, H, W, C, K, R, S, stride, pad, relu, residual, tf32) <
           std::tie(o.device, o.N, o.H, o.W, o.C, o.K, o.R, o.S, o.stride, o.pad, o.relu, o.residual, o.tf32);
  }
};

// One status: the fused call, or the plain convolution (whose success is followed by our epilogue).
cudnnStatus_t run(const Exec& ex, const Plan& plan, const ConvShape& s, const float* x, const ConvParams& p,
                  float* y) {
  PoolBuffer<char> ws(*ex.pool, plan.workspace, ex.stream);
  const float one = 1.f, zero = 0.f;
  if (plan.fused) {
    // Without a residual, z is y itself scaled by alpha2 = 0. cuDNN still reads z (on an H200,
    // compute-sanitizer initcheck saw it convert the layout of a tensor nothing had written, and
    // z is the only such input), and 0 * NaN is NaN, so y is zeroed first.
    const float alpha2 = p.residual ? 1.f : 0.f;
    if (!p.residual)
      CUDA_CHECK_THROW(cudaMemsetAsync(y, 0, size_t(s.N) * s.P() * s.Q() * s.K * sizeof(float), ex.stream));
    return cudnnConvolutionBiasActivationForward(ex.dnn, &one, plan.x, x, plan.w, p.w, plan.conv, plan.algo,
                                                 ws.data(), plan.workspace, &alpha2, plan.y,
                                                 p.residual ? p.residual : y, plan.bias, p.bias, plan.act, plan.y, y);
  }
  const cudnnStatus_t st = cudnnConvolutionForward(ex.dnn, &one, plan.x, x, plan.w, p.w, plan.conv, plan.algo,
                                                   ws.data(), plan.workspace, &zero, plan.y, y);
  if (st == CUDNN_STATUS_SUCCESS) bias_act(ex, y, p.bias, p.residual, p.relu, size_t(s.N) * s.P() * s.Q() * s.K, s.K);
  return st;
}

bool unsupported(cudnnStatus_t st) {
  const int category = CUDNN_STATUS_CATEGORY(st);
  return category == CUDNN_STATUS_NOT_SUPPORTED || category == CUDNN_STATUS_BAD_PARAM;
}

// Builds the plan and runs the convolution once with it. Candidates are cuDNN's heuristic ranking
// (deterministic, unlike timing-based search, so a process always picks the same algorithm and
// gives the same features); the first that cuDNN accepts wins, fused before unfused. cuDNN only
// knows at call time whether the fused kernel exists for a case (identity activation, for one, is
// IMPLICIT_PRECOMP_GEMM only), hence trying the real call.
std::unique_ptr<Plan> make_plan(const Exec& ex, const ConvShape& s, const float* x, const ConvParams& p, float* y) {
  auto plan = std::make_unique<Plan>();
  CUDNN_CHECK_THROW(cudnnCreateTensorDescriptor(&plan->x));
  CUDNN_CHECK_THROW(cudnnCreateTensorDescriptor(&plan->y));
  CUDNN_CHECK_THROW(cudnnCreateTensorDescriptor(&plan->bias));
  CUDNN_CHECK_THROW(cudnnCreateFilterDescriptor(&plan->w));
  CUDNN_CHECK_THROW(cudnnCreateConvolutionDescriptor(&plan->conv));
  CUDNN_CHECK_THROW(cudnnCreateActivationDescriptor(&plan->act));
  CUDNN_CHECK_THROW(cudnnSetTensor4dDescriptor(plan->x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, s.N, s.C, s.H, s.W));
  CUDNN_CHECK_THROW(cudnnSetTensor4dDescriptor(plan->y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, s.N, s.K, s.P(), s.Q()));
  CUDNN_CHECK_THROW(cudnnSetTensor4dDescriptor(plan->bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, s.K, 1, 1));
  // The NHWC filter format is KRSC in memory.
  CUDNN_CHECK_THROW(cudnnSetFilter4dDescriptor(plan->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, s.K, s.C, s.R, s.S));
  CUDNN_CHECK_THROW(cudnnSetConvolution2dDescriptor(plan->conv, s.pad, s.pad, s.stride, s.stride, 1, 1,
                                                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  CUDNN_CHECK_THROW(cudnnSetActivationDescriptor(
      plan->act, p.relu ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY, CUDNN_NOT_PROPAGATE_NAN, 0.0));
  // CUDNN_DEFAULT_MATH permits TF32 on Ampere and later; FMA math is the strict FP32 setting.
  const cudnnMathType_t math = p.tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
  CUDNN_CHECK_THROW(cudnnSetConvolutionMathType(plan->conv, math));

  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int count = 0;
  CUDNN_CHECK_THROW(cudnnGetConvolutionForwardAlgorithm_v7(ex.dnn, plan->x, plan->w, plan->conv, plan->y,
                                                           CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf));
  for (bool fused : {true, false})
    for (int i = 0; i < count; ++i) {
      const cudnnConvolutionFwdAlgoPerf_t& c = perf[i];
      if (c.status != CUDNN_STATUS_SUCCESS) continue;
      const bool tensor_op = c.mathType == CUDNN_TENSOR_OP_MATH || c.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
      if (tensor_op && !p.tf32) continue;
      if (fused && !p.relu && c.algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM) continue;
      CUDNN_CHECK_THROW(cudnnSetConvolutionMathType(plan->conv, p.tf32 ? c.mathType : CUDNN_FMA_MATH));
      size_t bytes = 0;
      cudnnStatus_t st =
          cudnnGetConvolutionForwardWorkspaceSize(ex.dnn, plan->x, plan->w, plan->conv, plan->y, c.algo, &bytes);
      if (unsupported(st) || (st == CUDNN_STATUS_SUCCESS && bytes > kMaxWorkspace)) continue;
      CUDNN_CHECK_THROW(st);
      plan->algo = c.algo;
      plan->workspace = bytes;
      plan->fused = fused;
      st = run(ex, *plan, s, x, p, y);
      if (st == CUDNN_STATUS_SUCCESS) return plan;
      if (!unsupported(st)) CUDNN_CHECK_THROW(st);
    }
  throw CudaError("conv2d: no cuDNN algorithm for this shape");
}

}  // namespace

void conv2d(const Exec& ex, const ConvShape& s, const float* x, const ConvParams& p, float* y) {
  if (size_t(s.N) * s.P() * s.Q() * s.K == 0) return;
  static std::mutex mutex;
  static std::map<Key, std::unique_ptr<Plan>> plans;  // process lifetime; descriptors are host objects
  int device = 0;
  CUDA_CHECK_THROW(cudaGetDevice(&device));
  const Key key{device, s.N, s.H, s.W, s.C, s.K, s.R, s.S, s.stride, s.pad, p.relu, p.residual != nullptr, p.tf32};
  std::unique_lock<std::mutex> lock(mutex);
  auto it = plans.find(key);
  if (it == plans.end()) {  // the first call of a shape runs inside make_plan, under the lock
    plans.emplace(key, make_plan(ex, s, x, p, y));
    return;
  }
  const Plan& plan = *it->second;
  lock.unlock();  // plans are never erased or changed once built
  CUDNN_CHECK_THROW(run(ex, plan, s, x, p, y));
}

}  // namespace caption::cuda
