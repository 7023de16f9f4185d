#include "runtime/device.h"

#include <stdexcept>

#if CAPTION_HAS_CUDA
#include <cuda_runtime.h>
#endif

namespace caption {

bool cuda_available() {
#if CAPTION_HAS_CUDA
  static const bool available = [] {
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
  }();
  return available;
#else
  return false;
#endif
}

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::CPU;
  if (name == "auto") return cuda_available() ? Device::CUDA : Device::CPU;
  if (name == "cuda") {
    if (!CAPTION_HAS_CUDA) throw std::runtime_error("--device cuda: this build has no CUDA support");
    if (!cuda_available()) throw std::runtime_error("--device cuda: no usable CUDA device");
    return Device::CUDA;
  }
  throw std::invalid_argument("unknown device '" + name + "' (expected auto, cpu or cuda)");
}

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

}  // namespace caption
