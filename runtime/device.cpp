#include "runtime/device.h"

#include <cstdio>
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

std::string cuda_description() {
#if CAPTION_HAS_CUDA
  int n = 0;
  if (cudaError_t e = cudaGetDeviceCount(&n); e != cudaSuccess) return std::string("none (") + cudaGetErrorString(e) + ")";
  if (n == 0) return "none (no CUDA device)";
  cudaDeviceProp p{};
  if (cudaError_t e = cudaGetDeviceProperties(&p, 0); e != cudaSuccess)
    return std::string("none (") + cudaGetErrorString(e) + ")";
  int driver = 0;
  cudaDriverGetVersion(&driver);
  char buf[320];
  std::snprintf(buf, sizeof buf, "%s (sm_%d%d, %.1f GiB, driver %d.%d)%s", p.name, p.major, p.minor,
                double(p.totalGlobalMem) / (1 << 30), driver / 1000, driver % 1000 / 10,
                n > 1 ? (", device 0 of " + std::to_string(n)).c_str() : "");
  return buf;
#else
  return "none (built without CUDA)";
#endif
}

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::CPU;
  if (name == "auto") return cuda_available() ? Device::CUDA : Device::CPU;
  if (name == "cuda") {
    if (!CAPTION_HAS_CUDA) throw std::runtime_error("--device cuda: this build has no CUDA support");
    if (!cuda_available()) throw std::runtime_error("--device cuda: no usable CUDA device: " + cuda_description());
    return Device::CUDA;
  }
  throw std::invalid_argument("unknown device '" + name + "' (expected auto, cpu or cuda)");
}

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

}  // namespace caption
