#pragma once
// --device and --memory-limit, shared by every command that computes, and --cuda-graphs for
// the commands that run the decoder step by step (describe, train).
#include <CLI/CLI.hpp>
#include <string>

#include "runtime/device.h"

namespace caption::cli {

struct DeviceOptions {
  std::string device = "auto";
  size_t memory_limit_mib = 0;  // 0: no cap beyond what the device has
  bool cuda_graphs = false;

  Device parse() const { return parse_device(device); }
  size_t memory_limit_bytes() const { return memory_limit_mib << 20; }
};

void add_device_options(CLI::App* sub, DeviceOptions& opt);
void add_graph_option(CLI::App* sub, DeviceOptions& opt);

}  // namespace caption::cli
