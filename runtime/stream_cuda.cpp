#include "runtime/stream.h"

#include <cudnn.h>

#include "runtime/cuda_check.h"

namespace caption {

CudaStream::CudaStream() { CUDA_CHECK_THROW(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
CudaStream::~CudaStream() { cudaStreamDestroy(stream_); }
void CudaStream::synchronize() const { CUDA_CHECK_THROW(cudaStreamSynchronize(stream_)); }

CublasHandle::CublasHandle(Stream s) {
  CUBLAS_CHECK_THROW(cublasCreate(&handle_));
  try {
    CUBLAS_CHECK_THROW(cublasSetStream(handle_, s));
    // A workspace of our own, set after cublasSetStream (which resets it to cuBLAS's pool): with
    // cuBLAS's pool, a CUDA graph capture allocates inside the graph, outside our memory pool,
    // and may pick other kernels than plain launches do.
    CUDA_CHECK_THROW(cudaMalloc(&workspace_, kWorkspaceBytes));
    CUBLAS_CHECK_THROW(cublasSetWorkspace(handle_, workspace_, kWorkspaceBytes));
    CUBLAS_CHECK_THROW(cublasSetMathMode(handle_, CUBLAS_PEDANTIC_MATH));  // plain FP32, no TF32
  } catch (...) {
    cublasDestroy(handle_);
    cudaFree(workspace_);
    throw;
  }
}
CublasHandle::~CublasHandle() {
  cublasDestroy(handle_);
  cudaFree(workspace_);
}

CudnnHandle::CudnnHandle(Stream s) {
  CUDNN_CHECK_THROW(cudnnCreate(&handle_));
  CUDNN_CHECK_THROW(cudnnSetStream(handle_, s));
}
CudnnHandle::~CudnnHandle() { cudnnDestroy(handle_); }

const char* cublas_status_name(cublasStatus_t s) { return cublasGetStatusName(s); }

}  // namespace caption
