#pragma once
// The main() of every benchmark binary: CPU benchmarks always, CUDA ones when a device answers.
#include <benchmark/benchmark.h>

#include "runtime/device.h"

namespace caption {

inline int run_benchmarks(int argc, char** argv, void (*register_all)(Device)) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_all(Device::CPU);
  if (cuda_available()) register_all(Device::CUDA);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace caption
