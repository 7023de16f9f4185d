#pragma once
// Owns what one backend needs to run ops: the memory pool and, on CUDA, a stream and the
// cuBLAS and cuDNN handles bound to it. Hands out the Exec that ops take.
#include <memory>

#include "runtime/exec.h"
#include "runtime/memory_pool.h"

namespace caption {

class Context {
 public:
  explicit Context(Device device, size_t pool_limit_bytes = 0);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  Device device() const { return device_; }
  Exec exec() { return exec_; }
  MemoryPool& pool() { return *pool_; }
  void synchronize();

  // Host <-> this context's memory, ordered on its stream; download waits for completion.
  void upload(void* dst, const void* host_src, size_t bytes);
  void download(void* host_dst, const void* src, size_t bytes);
  void copy(void* dst, const void* src, size_t bytes);  // within this context's memory
  void zero(void* dst, size_t bytes);

 private:
  struct CudaState;
  Device device_;
  std::unique_ptr<MemoryPool> pool_;
  std::unique_ptr<CudaState> cuda_;
  Exec exec_;
};

}  // namespace caption
