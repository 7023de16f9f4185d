#pragma once
// Error checks for CUDA runtime, cuBLAS and cuDNN calls: throw with file, line and the
// failing expression, so that a failure deep in a kernel launch names itself.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <stdexcept>
#include <string>

namespace caption {

class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void throw_cuda_error(const char* lib, const std::string& what, const char* expr,
                                          const char* file, int line) {
  throw CudaError(std::string(file) + ":" + std::to_string(line) + ": " + lib + " error '" + what +
                  "' in " + expr);
}

const char* cublas_status_name(cublasStatus_t s);

}  // namespace caption

#define CUDA_CHECK_THROW(x)                                                                  \
  do {                                                                                       \
    cudaError_t err_ = (x);                                                                  \
    if (err_ != cudaSuccess)                                                                 \
      ::caption::throw_cuda_error("CUDA", cudaGetErrorString(err_), #x, __FILE__, __LINE__); \
  } while (0)

#define CUBLAS_CHECK_THROW(x)                                                                       \
  do {                                                                                              \
    cublasStatus_t st_ = (x);                                                                       \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                               \
      ::caption::throw_cuda_error("cuBLAS", ::caption::cublas_status_name(st_), #x, __FILE__, __LINE__); \
  } while (0)

#define CUDNN_CHECK_THROW(x)                                                                    \
  do {                                                                                          \
    cudnnStatus_t st_ = (x);                                                                    \
    if (st_ != CUDNN_STATUS_SUCCESS)                                                            \
      ::caption::throw_cuda_error("cuDNN", cudnnGetErrorString(st_), #x, __FILE__, __LINE__);   \
  } while (0)

// After a kernel launch: catches bad launch configurations at the call site.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK_THROW(cudaGetLastError())
