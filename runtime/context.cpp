#include "runtime/context.h"

#include <cstring>

#if CAPTION_HAS_CUDA
#include "runtime/cuda_check.h"
#include "runtime/stream.h"
#endif

namespace caption {

#if CAPTION_HAS_CUDA
struct Context::CudaState {
  CudaStream stream;
  CublasHandle blas{stream.get()};
  CudnnHandle dnn{stream.get()};
};
#else
struct Context::CudaState {};
#endif

Context::Context(Device device, size_t pool_limit_bytes)
    : device_(device), pool_(std::make_unique<MemoryPool>(device, pool_limit_bytes)) {
  exec_.device = device;
  exec_.pool = pool_.get();
  if (device == Device::CUDA) {
#if CAPTION_HAS_CUDA
    cuda_ = std::make_unique<CudaState>();
    exec_.stream = cuda_->stream.get();
    exec_.blas = cuda_->blas.get();
    exec_.dnn = cuda_->dnn.get();
#else
    throw std::runtime_error("this build has no CUDA support");
#endif
  }
}

Context::~Context() = default;

void Context::synchronize() {
#if CAPTION_HAS_CUDA
  if (cuda_) cuda_->stream.synchronize();
#endif
}

void Context::upload(void* dst, const void* host_src, size_t bytes) {
#if CAPTION_HAS_CUDA
  if (cuda_) {
    CUDA_CHECK_THROW(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, exec_.stream));
    return;
  }
#endif
  std::memcpy(dst, host_src, bytes);
}

void Context::download(void* host_dst, const void* src, size_t bytes) {
#if CAPTION_HAS_CUDA
  if (cuda_) {
    CUDA_CHECK_THROW(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, exec_.stream));
    cuda_->stream.synchronize();
    return;
  }
#endif
  std::memcpy(host_dst, src, bytes);
}

void Context::copy(void* dst, const void* src, size_t bytes) {
#if CAPTION_HAS_CUDA
  if (cuda_) {
    CUDA_CHECK_THROW(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, exec_.stream));
    return;
  }
#endif
  std::memcpy(dst, src, bytes);
}

void Context::zero(void* dst, size_t bytes) {
#if CAPTION_HAS_CUDA
  if (cuda_) {
    CUDA_CHECK_THROW(cudaMemsetAsync(dst, 0, bytes, exec_.stream));
    return;
  }
#endif
  std::memset(dst, 0, bytes);
}

}  // namespace caption
