#pragma once
// The distinct convolutions of ResNet50 at 224x224 (v1 and v1.5, all five stages) with the
// epilogue the network fuses into each, for the benchmarks (bench_encoder_ops, conv_algos) and
// bench/peer/encoder_ops.py, which lists the same classes.
// The classes, in network order, named by stage (the stem is "conv1"):
//   reduce0      block 0's 1x1 from the previous stage's channels, stride 1 (layer1; layers 2-4 of v1.5)
//   reduce0.s2   the same with the stage's stride on it (v1: the default model's MSRA trunk)
//   3x3.s2       block 0's 3x3 with the stride (v1.5, torchvision)
//   reduce       the 1x1 of the other blocks, 4w -> w
//   3x3          stride 1 (every block of v1, blocks 1.. of v1.5)
//   expand       1x1 w -> 4w, the residual added before the ReLU
//   downsample   block 0's 1x1 projection shortcut (.s2 beyond layer1): bias, no ReLU
#include <string>
#include <vector>

#include "kernels/conv2d.h"

namespace caption::bench {

constexpr int kConvImage = 224;

struct ConvClass {
  std::string name;
  ConvShape shape;  // N left 0: set by the caller
  bool residual, relu;
};

inline std::vector<ConvClass> conv_classes() {
  constexpr int kWidth[4] = {64, 128, 256, 512};  // bottleneck width per stage; blocks output 4x
  std::vector<ConvClass> out{{"conv1", {0, kConvImage, kConvImage, 3, 64, 7, 7, 2, 3}, false, true}};
  int in = 64, hw = kConvImage / 4;  // after conv1 and the max pool
  for (int l = 0; l < 4; ++l) {
    const int w = kWidth[l], s = l > 0 ? 2 : 1, o = hw / s;
    const std::string p = "layer" + std::to_string(l + 1) + ".", s2 = s == 2 ? ".s2" : "";
    out.push_back({p + "reduce0", {0, hw, hw, in, w, 1, 1, 1, 0}, false, true});
    if (s == 2) {
      out.push_back({p + "reduce0.s2", {0, hw, hw, in, w, 1, 1, 2, 0}, false, true});
      out.push_back({p + "3x3.s2", {0, hw, hw, w, w, 3, 3, 2, 1}, false, true});
    }
    out.push_back({p + "reduce", {0, o, o, 4 * w, w, 1, 1, 1, 0}, false, true});
    out.push_back({p + "3x3", {0, o, o, w, w, 3, 3, 1, 1}, false, true});
    out.push_back({p + "expand", {0, o, o, w, 4 * w, 1, 1, 1, 0}, true, true});
    out.push_back({p + "downsample" + s2, {0, hw, hw, in, 4 * w, 1, 1, s, 0}, false, false});
    in = 4 * w;
    hw = o;
  }
  return out;
}

}  // namespace caption::bench
