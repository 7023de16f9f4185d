#include "tools/device_options.h"

namespace caption::cli {

void add_device_options(CLI::App* sub, DeviceOptions& opt) {
  sub->add_option("--device", opt.device, "auto, cpu or cuda")->capture_default_str();
  sub->add_option("--memory-limit", opt.memory_limit_mib,
                  "MiB the engine's memory pool may hold on the device (0: no cap); a batch that does not fit "
                  "is split (describe, features) or refused with the size that fits (train)")
      ->check(CLI::Range(size_t(0), size_t(1) << 40));
}

void add_graph_option(CLI::App* sub, DeviceOptions& opt) {
  sub->add_flag("--cuda-graphs", opt.cuda_graphs,
                "on CUDA, run each decoder step (training or decoding) as one CUDA graph launch, captured once "
                "per shape (no effect on the CPU)");
}

}  // namespace caption::cli
