// conv_algos: which cuDNN algorithm each convolution of ResNet50 should use, measured. For every
// class of bench/conv_classes.h at each batch size given (default 32), in FP32 (FMA math, no
// TF32) NHWC (the engine's default) and NCHW (PyTorch's faster one on the GPU), and in bfloat16
// NHWC (the engine's --bf16): every forward algorithm cuDNN accepts, as the fused call the engine
// makes (cudnnConvolutionBiasActivationForward with the class's bias, residual and ReLU) and as
// the plain convolution (cudnnConvolutionForward, whose epilogue the engine would add as one more
// pass), each the median of 10 calls timed with events after 2 warm-ups; in NHWC also the
// cuBLASLt matmul with the epilogue fused, after its im2col gather (kernels/conv2d_gemm.h); beside
// them the engine's own conv2d calls with the route its heuristic and its timed search choose
// (kernels/conv2d.h), and which one each chose.
//
//   build/bench/conv_algos 32 1 > conv-algos.md        # markdown; needs a GPU
//
// The sweep allocates with cudaMalloc directly: it measures cuDNN, not the engine's pool.
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/conv_classes.h"
#include "kernels/conv2d_cudnn.h"
#include "kernels/conv2d_gemm.h"
#include "kernels/element.cuh"
#include "runtime/context.h"
#include "runtime/cuda_check.h"

namespace caption::bench {
namespace {

constexpr size_t kMaxWorkspace = size_t(1) << 30;  // what this sweep lets an algorithm use
const char* kAlgoNames[] = {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT",
                            "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};

template <class T>
__global__ void fill(T* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    uint32_t h = uint32_t(i) * 2654435761u ^ seed;
    h ^= h >> 15, h *= 2246822519u, h ^= h >> 13;
    cuda::store(p[i], float(h & 0xffff) / 65536.f - 0.5f);
  }
}

// n random values in [-0.5, 0.5), FP32 or bfloat16.
struct DeviceBuffer {
  void* p = nullptr;
  DeviceBuffer(size_t n, uint32_t seed, bool bf16 = false) {
    CUDA_CHECK_THROW(cudaMalloc(&p, std::max<size_t>(n, 1) * (bf16 ? 2 : 4)));
    if (bf16) fill<<<1024, 256>>>(static_cast<__nv_bfloat16*>(p), n, seed);
    else fill<<<1024, 256>>>(static_cast<float*>(p), n, seed);
    CUDA_CHECK_LAUNCH();
  }
  template <class T>
  T* as() const { return static_cast<T*>(p); }
  ~DeviceBuffer() { cudaFree(p); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

// Median microseconds of 10 calls of `call` after 2 warm-ups, or a negative value when a call
// fails (cuDNN refuses the algorithm for this case).
template <class Call>
double median_us(cudaStream_t stream, Call call) {
  for (int i = 0; i < 2; ++i)
    if (call() != CUDNN_STATUS_SUCCESS) return -1;
  cudaEvent_t a, b;
  CUDA_CHECK_THROW(cudaEventCreate(&a));
  CUDA_CHECK_THROW(cudaEventCreate(&b));
  std::vector<double> us;
  for (int i = 0; i < 10; ++i) {
    CUDA_CHECK_THROW(cudaEventRecord(a, stream));
    call();
    CUDA_CHECK_THROW(cudaEventRecord(b, stream));
    CUDA_CHECK_THROW(cudaEventSynchronize(b));
    float ms = 0;
    CUDA_CHECK_THROW(cudaEventElapsedTime(&ms, a, b));
    us.push_back(1000.0 * ms);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

std::string cell(double us, const char* what) {
  if (us < 0) return "n/a";
  char text[64];
  std::snprintf(text, sizeof text, "%.1f (%s)", us, what);
  return text;
}
std::string cell(double us, int algo) { return algo < 0 ? "n/a" : cell(us, kAlgoNames[algo]); }

std::string cell(double us, const cuda::ConvChoice& c) {
  switch (c.route) {
    case cuda::ConvRoute::Gemm: return cell(us, "cuBLASLt");
    case cuda::ConvRoute::CudnnFused: return cell(us, c.algo) + " fused";
    case cuda::ConvRoute::CudnnPlain: return cell(us, c.algo) + " plain";
  }
  return "n/a";
}

struct Timed {
  double us = -1;
  int algo = -1;
  void keep_faster(double t, int a) {
    if (t >= 0 && (us < 0 || t < us)) us = t, algo = a;
  }
};

void sweep(const Exec& ex, const ConvClass& c, Layout layout, bool bf16) {
  const ConvShape& s = c.shape;
  const size_t out = size_t(s.N) * s.P() * s.Q() * s.K;
  DeviceBuffer x(size_t(s.N) * s.H * s.W * s.C, 1, bf16), w(size_t(s.K) * s.C * s.R * s.S, 2, bf16),
      bias(s.K, 3, bf16), bias32(s.K, 3), y(out, 4, bf16), z(out, 5, bf16), ws(kMaxWorkspace / sizeof(float), 6);
  CUDA_CHECK_THROW(cudaDeviceSynchronize());  // the fills ran on the default stream, the calls run on ex.stream
  cuda::ConvDescriptors d(s, layout, bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT, c.relu);
  CUDNN_CHECK_THROW(cudnnSetConvolutionMathType(d.conv, bf16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
  const float one = 1.f, zero = 0.f, alpha2 = c.residual ? 1.f : 0.f;
  cudnnHandle_t dnn = ex.dnn;
  cudaStream_t stream = ex.stream;

  Timed fused, plain;
  for (int a = 0; a < CUDNN_CONVOLUTION_FWD_ALGO_COUNT; ++a) {
    const auto algo = cudnnConvolutionFwdAlgo_t(a);
    size_t bytes = 0;
    if (cudnnGetConvolutionForwardWorkspaceSize(dnn, d.x, d.w, d.conv, d.y, algo, &bytes) != CUDNN_STATUS_SUCCESS ||
        bytes > kMaxWorkspace)
      continue;
    fused.keep_faster(median_us(stream, [&] {
      return cudnnConvolutionBiasActivationForward(dnn, &one, d.x, x.p, d.w, w.p, d.conv, algo, ws.p, bytes, &alpha2,
                                                   d.y, z.p, d.bias, bias.p, d.act, d.y, y.p);
    }), a);
    plain.keep_faster(median_us(stream, [&] {
      return cudnnConvolutionForward(dnn, &one, d.x, x.p, d.w, w.p, d.conv, algo, ws.p, bytes, &zero, d.y, y.p);
    }), a);
  }
  // The matmul route (NHWC; cudaMalloc'd pointers are aligned for it), its gather included.
  double gemm_us = -1;
  if (const auto spec = cuda::conv_gemm_spec(s, layout, bf16 ? DType::BF16 : DType::F32, false, c.relu, c.residual))
    if (const auto mm = cuda::LtMatmul::plan(ex.blas, *spec))
      gemm_us = median_us(stream, [&] {
        const cublasStatus_t st =
            cuda::conv_gemm(ex, *mm, s, bf16 ? DType::BF16 : DType::F32, x.p, w.p, c.residual ? z.p : nullptr, bias.p,
                            y.p);
        return st == CUBLAS_STATUS_SUCCESS ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_EXECUTION_FAILED;
      });
  // The engine's own calls (kernels/conv2d.cu), with each way it can choose, and what it chose.
  std::string engine[2];
  for (ConvSearch search : {ConvSearch::Heuristic, ConvSearch::Timed}) {
    const ConvParams p{w.as<float>(), bias.as<float>(), c.residual ? z.as<float>() : nullptr, c.relu, false, layout,
                       search};
    const ConvParamsBf16 p16{w.as<uint16_t>(), bias32.as<float>(), bias.as<uint16_t>(),
                             c.residual ? z.as<uint16_t>() : nullptr, c.relu, layout, search};
    const double t = median_us(ex.stream, [&] {
      if (bf16) conv2d(ex, s, x.as<uint16_t>(), p16, y.as<uint16_t>());
      else conv2d(ex, s, x.as<float>(), p, y.as<float>());
      return CUDNN_STATUS_SUCCESS;
    });
    const auto choice = bf16 ? cuda::conv2d_choice(s, p16) : cuda::conv2d_choice(s, p);
    engine[search == ConvSearch::Timed] = choice ? cell(t, *choice) : std::string("n/a");
  }
  const double gflop = 2.0 * double(out) * s.C * s.R * s.S * 1e-9;
  const std::string kind = std::string(layout_name(layout)) + (bf16 ? " bf16" : " fp32");
  std::printf("| %s | %d | %s | %.2f | %s | %s | %s | %s | %s |\n", c.name.c_str(), s.N, kind.c_str(), gflop,
              engine[0].c_str(), engine[1].c_str(), cell(fused.us, fused.algo).c_str(),
              cell(plain.us, plain.algo).c_str(), cell(gemm_us, "cuBLASLt").c_str());
}

}  // namespace
}  // namespace caption::bench

int main(int argc, char** argv) {
  using namespace caption;
  using namespace caption::bench;
  std::vector<int> batches;
  for (int i = 1; i < argc; ++i) {
    const int b = std::atoi(argv[i]);
    if (b < 1) {
      std::fprintf(stderr, "usage: conv_algos [BATCH...]  (default 32)\n");
      return 2;
    }
    batches.push_back(b);
  }
  if (batches.empty()) batches.push_back(32);
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "conv_algos: no CUDA device\n");
    return 1;
  }
  try {
    cudaDeviceProp prop{};
    CUDA_CHECK_THROW(cudaGetDeviceProperties(&prop, 0));
    Context ctx(Device::CUDA);
    std::printf("cuDNN %zu on %s, FP32 (FMA math) and bfloat16 (tensor cores, FP32 accumulation), median of 10 "
                "calls, µs (algorithm); plain = the convolution alone, without the bias/residual/ReLU pass it "
                "would need; cuBLASLt = NHWC convolutions as one im2col gather and one matmul with bias, residual and "
                "ReLU fused; "
                "engine = kernels/conv2d.cu's call with its heuristic or timed choice, epilogue included\n\n",
                cudnnGetVersion(), prop.name);
    std::printf("| conv | batch | layout | GFLOP | engine heuristic | engine timed | fastest fused | fastest plain | "
                "cuBLASLt |\n");
    std::printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for (int batch : batches)
      for (ConvClass c : conv_classes()) {
        c.shape.N = batch;
        for (Layout layout : {Layout::NHWC, Layout::NCHW}) sweep(ctx.exec(), c, layout, false);
        sweep(ctx.exec(), c, Layout::NHWC, true);
        std::fflush(stdout);
      }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "conv_algos: %s\n", e.what());
    return 1;
  }
  return 0;
}
