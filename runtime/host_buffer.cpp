#include "runtime/host_buffer.h"

#include <cstdlib>
#include <new>
#include <stdexcept>
#include <utility>

namespace caption {

#if CAPTION_HAS_CUDA
void* pinned_allocate(size_t bytes);  // host_buffer_cuda.cpp
void pinned_free(void* p);
#endif

HostBuffer::HostBuffer(Device device, size_t bytes) : bytes_(bytes), pinned_(device == Device::CUDA) {
  if (bytes == 0) return;
  if (pinned_) {
#if CAPTION_HAS_CUDA
    data_ = pinned_allocate(bytes);
#else
    throw std::logic_error("pinned host memory in a CPU-only build");
#endif
  } else {
    data_ = std::aligned_alloc(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
    if (!data_) throw std::bad_alloc();
  }
}

HostBuffer& HostBuffer::operator=(HostBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    data_ = std::exchange(o.data_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
    pinned_ = std::exchange(o.pinned_, false);
  }
  return *this;
}

void HostBuffer::reset() {
  if (data_) {
#if CAPTION_HAS_CUDA
    if (pinned_) pinned_free(data_);
    else std::free(data_);
#else
    std::free(data_);
#endif
  }
  data_ = nullptr;
  bytes_ = 0;
  pinned_ = false;
}

}  // namespace caption
