#pragma once
// Host memory for transfers to and from a device. For a CUDA device it is page-locked
// (cudaHostAlloc): the copy engines read and write it directly, so cudaMemcpyAsync returns at
// once and runs beside kernels at full bus speed, where pageable memory is staged by the driver.
// Pinning is slow and takes memory the OS cannot page out, so callers allocate a few buffers
// and reuse them. For the CPU it is plain aligned memory.
#include <cstddef>

#include "runtime/device.h"

namespace caption {

class HostBuffer {
 public:
  static constexpr size_t kAlignment = 256;

  HostBuffer() = default;
  HostBuffer(Device device, size_t bytes);  // throws CudaError when the driver refuses to pin
  ~HostBuffer() { reset(); }
  HostBuffer(HostBuffer&& o) noexcept { *this = std::move(o); }
  HostBuffer& operator=(HostBuffer&& o) noexcept;
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;

  template <class T>
  T* data() const {
    return static_cast<T*>(data_);
  }
  size_t size() const { return bytes_; }
  bool pinned() const { return pinned_; }

 private:
  void reset();

  void* data_ = nullptr;
  size_t bytes_ = 0;
  bool pinned_ = false;
};

}  // namespace caption
