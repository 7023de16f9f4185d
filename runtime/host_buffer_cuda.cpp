#include <cuda_runtime.h>

#include "runtime/cuda_check.h"

namespace caption {

void* pinned_allocate(size_t bytes) {
  void* p = nullptr;
  const cudaError_t err = cudaHostAlloc(&p, bytes, cudaHostAllocDefault);
  if (err != cudaSuccess) {
    cudaGetLastError();  // not sticky: clear it, or the next launch check would report it
    throw_cuda_error("CUDA", cudaGetErrorString(err), "cudaHostAlloc", __FILE__, __LINE__);
  }
  return p;
}

// The owner waits for its copies to finish first: cudaFreeHost is not documented to wait.
void pinned_free(void* p) { cudaFreeHost(p); }

}  // namespace caption
