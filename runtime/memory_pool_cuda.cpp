#include <cuda_runtime.h>

#include "runtime/memory_pool.h"

namespace caption {
namespace {

class CudaAllocator : public BackingAllocator {
 public:
  void* allocate(size_t bytes) override {
    void* p = nullptr;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky-free out-of-memory error
      return nullptr;
    }
    return p;
  }
  void deallocate(void* p) override { cudaFree(p); }
};

}  // namespace

std::unique_ptr<BackingAllocator> make_cuda_allocator() { return std::make_unique<CudaAllocator>(); }

}  // namespace caption
