#pragma once
// The execution context every op takes: which backend, and on CUDA the stream and
// library handles to use. CUDA types are forward-declared so that CPU code and
// CPU-only builds never include CUDA headers.
#include <stdexcept>

#include "runtime/device.h"

struct CUstream_st;
struct cublasContext;

namespace caption {

using Stream = CUstream_st*;
using BlasHandle = cublasContext*;
class MemoryPool;

struct Exec {
  Device device = Device::CPU;
  Stream stream = nullptr;     // CUDA only
  BlasHandle blas = nullptr;   // CUDA only (cuBLAS handle bound to `stream`)
  MemoryPool* pool = nullptr;  // scratch memory for ops; on the exec's device

  bool cuda() const { return device == Device::CUDA; }
};

// Calls a CUDA implementation when this build has one; a CPU-only build never
// creates a CUDA Exec, so the else-branch is unreachable there.
#if CAPTION_HAS_CUDA
#define CAPTION_CUDA_CALL(call) call
#else
#define CAPTION_CUDA_CALL(call) throw std::logic_error("CUDA op in a CPU-only build")
#endif

}  // namespace caption
