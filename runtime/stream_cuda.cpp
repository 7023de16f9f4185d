#include "runtime/stream.h"

#include <cudnn.h>

#include "runtime/cuda_check.h"

namespace caption {

CudaStream::CudaStream() { CUDA_CHECK_THROW(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
CudaStream::~CudaStream() { cudaStreamDestroy(stream_); }
void CudaStream::synchronize() const { CUDA_CHECK_THROW(cudaStreamSynchronize(stream_)); }

CudaEvent::CudaEvent() { CUDA_CHECK_THROW(cudaEventCreate(&event_)); }
CudaEvent::~CudaEvent() { cudaEventDestroy(event_); }
void CudaEvent::record(Stream s) { CUDA_CHECK_THROW(cudaEventRecord(event_, s)); }
void CudaEvent::synchronize() const { CUDA_CHECK_THROW(cudaEventSynchronize(event_)); }
float CudaEvent::elapsed_ms_since(const CudaEvent& start) const {
  float ms = 0;
  CUDA_CHECK_THROW(cudaEventElapsedTime(&ms, start.event_, event_));
  return ms;
}

CublasHandle::CublasHandle(Stream s) {
  CUBLAS_CHECK_THROW(cublasCreate(&handle_));
  CUBLAS_CHECK_THROW(cublasSetStream(handle_, s));
  CUBLAS_CHECK_THROW(cublasSetMathMode(handle_, CUBLAS_PEDANTIC_MATH));  // plain FP32, no TF32
}
CublasHandle::~CublasHandle() { cublasDestroy(handle_); }

CudnnHandle::CudnnHandle(Stream s) {
  CUDNN_CHECK_THROW(cudnnCreate(&handle_));
  CUDNN_CHECK_THROW(cudnnSetStream(handle_, s));
}
CudnnHandle::~CudnnHandle() { cudnnDestroy(handle_); }

const char* cublas_status_name(cublasStatus_t s) { return cublasGetStatusName(s); }

}  // namespace caption
