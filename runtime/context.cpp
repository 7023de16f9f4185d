#include "runtime/context.h"

#include <cstring>
#include <stdexcept>

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
  CudaStream copy;  // uploads beside the compute on `stream`
};
#else
struct Context::CudaState {};
#endif

Context::Context(Device device, size_t pool_limit_bytes)
    : device_(device), owned_pool_(std::make_unique<MemoryPool>(device, pool_limit_bytes)), pool_(owned_pool_.get()) {
  init_streams();
}

Context::Context(MemoryPool& shared_pool) : device_(shared_pool.device()), pool_(&shared_pool) { init_streams(); }

void Context::init_streams() {
  exec_.device = device_;
  exec_.pool = pool_;
  if (device_ == Device::CUDA) {
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
  if (cuda_) {
    cuda_->copy.synchronize();
    cuda_->stream.synchronize();
  }
#endif
}

// dst <- src: queued on stream `s` on CUDA (cudaMemcpyDefault: the direction follows from the
// pointers, all of which unified addressing knows), at once on the CPU.
void Context::copy_on(Stream s, void* dst, const void* src, size_t bytes) {
#if CAPTION_HAS_CUDA
  if (cuda_) {
    CUDA_CHECK_THROW(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, s));
    return;
  }
#endif
  (void)s;
  std::memcpy(dst, src, bytes);
}

void Context::upload(void* dst, const void* host_src, size_t bytes) { copy_on(exec_.stream, dst, host_src, bytes); }

void Context::download(void* host_dst, const void* src, size_t bytes) {
  copy_on(exec_.stream, host_dst, src, bytes);
#if CAPTION_HAS_CUDA
  if (cuda_) cuda_->stream.synchronize();
#endif
}

void Context::copy(void* dst, const void* src, size_t bytes) { copy_on(exec_.stream, dst, src, bytes); }

void Context::zero(void* dst, size_t bytes) {
#if CAPTION_HAS_CUDA
  if (cuda_) {
    CUDA_CHECK_THROW(cudaMemsetAsync(dst, 0, bytes, exec_.stream));
    return;
  }
#endif
  std::memset(dst, 0, bytes);
}

Stream Context::copy_stream() const {
#if CAPTION_HAS_CUDA
  if (cuda_) return cuda_->copy.get();
#endif
  return nullptr;
}

void Context::upload_async(void* dst, const void* host_src, size_t bytes) {
  copy_on(copy_stream(), dst, host_src, bytes);
}

void Context::download_async(void* host_dst, const void* src, size_t bytes) {
  copy_on(exec_.stream, host_dst, src, bytes);
}

Event::Event(Device device, bool timing) {
  if (device == Device::CPU) {
    if (timing) throw std::logic_error("timing event on the CPU");
    return;
  }
#if CAPTION_HAS_CUDA
  CUDA_CHECK_THROW(cudaEventCreateWithFlags(&event_, timing ? cudaEventDefault : cudaEventDisableTiming));
#else
  (void)timing;
  throw std::logic_error("CUDA event in a CPU-only build");
#endif
}

Event::~Event() {
#if CAPTION_HAS_CUDA
  if (event_) cudaEventDestroy(event_);
#endif
}

void Event::record(Stream s) {
#if CAPTION_HAS_CUDA
  if (event_) CUDA_CHECK_THROW(cudaEventRecord(event_, s));
#else
  (void)s;
#endif
}

void Event::wait(Stream s) const {
#if CAPTION_HAS_CUDA
  if (event_) CUDA_CHECK_THROW(cudaStreamWaitEvent(s, event_, 0));
#else
  (void)s;
#endif
}

void Event::synchronize() const {
#if CAPTION_HAS_CUDA
  if (event_) CUDA_CHECK_THROW(cudaEventSynchronize(event_));
#endif
}

float Event::elapsed_ms_since(const Event& start) const {
  float ms = 0;
#if CAPTION_HAS_CUDA
  CUDA_CHECK_THROW(cudaEventElapsedTime(&ms, start.event_, event_));
#else
  (void)start;
#endif
  return ms;
}

}  // namespace caption
