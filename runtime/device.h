#pragma once
// Where a computation runs. The CPU backend is both the reference and a usable engine.
#include <string>

namespace caption {

enum class Device { CPU, CUDA };

// True when this build has CUDA and a device answers. Any CUDA failure (no driver,
// driver too old, no device) means "no device": GPU tests skip, `auto` picks the CPU.
bool cuda_available();

// The CUDA device this process would use, for people and logs: e.g. "NVIDIA H100 80GB HBM3
// (sm_90, 79.1 GiB, driver 13.0)", or "none (<the CUDA error>)", or "none (built without CUDA)".
std::string cuda_description();

// "cpu", "cuda" or "auto" (CUDA when available). Throws std::invalid_argument otherwise,
// or std::runtime_error when "cuda" is asked for and none is usable.
Device parse_device(const std::string& name);
const char* device_name(Device d);

}  // namespace caption
