#pragma once
// RAII CUDA stream, cuBLAS and cuDNN handles (implemented in stream_cuda.cpp; CUDA builds only).
// Events are runtime/context.h's Event.
#include <cstddef>

#include "runtime/exec.h"

namespace caption {

class CudaStream {
 public:
  CudaStream();  // non-blocking stream
  ~CudaStream();
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  Stream get() const { return stream_; }
  void synchronize() const;

 private:
  Stream stream_ = nullptr;
};

class CublasHandle {
 public:
  explicit CublasHandle(Stream s);  // FP32 math (TF32 only where a caller opts in), own workspace
  ~CublasHandle();
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  BlasHandle get() const { return handle_; }

 private:
  static constexpr size_t kWorkspaceBytes = size_t(32) << 20;  // cuBLAS's own choice on Hopper
  BlasHandle handle_ = nullptr;
  void* workspace_ = nullptr;
};

class CudnnHandle {
 public:
  explicit CudnnHandle(Stream s);
  ~CudnnHandle();
  CudnnHandle(const CudnnHandle&) = delete;
  CudnnHandle& operator=(const CudnnHandle&) = delete;
  DnnHandle get() const { return handle_; }

 private:
  DnnHandle handle_ = nullptr;
};

}  // namespace caption
