// The encoder's ops one by one, on the CPU and, when a device answers, on CUDA:
//   preprocess/<dev>/<norm>/B:32  uint8 RGB [32,224,224,3] -> normalised float NHWC
//       (kernels/preprocess.h), both normalisations; bytes_per_s counts the bytes read plus
//       written (3 + 12 per pixel).
//   conv/<dev>/<class>/B:<B>  each distinct convolution of ResNet50 at 224x224 through
//       kernels/conv2d.h with the epilogue the network fuses into it; flop_per_s counts
//       2*N*P*Q*K*C*R*S. B is the batch each backend's encoder runs its convolutions at: 32 on
//       CUDA, 16 on the CPU, which runs a batch in pieces of 16 images (model/resnet50.h);
//       bench/peer/encoder_ops.py uses the same B per device.
// The classes, in network order, named by stage (the stem is "conv1"):
//   reduce0      block 0's 1x1 from the previous stage's channels, stride 1 (layer1; layers 2-4 of v1.5)
//   reduce0.s2   the same with the stage's stride on it (v1: the default model's MSRA trunk)
//   3x3.s2       block 0's 3x3 with the stride (v1.5, torchvision)
//   reduce       the 1x1 of the other blocks, 4w -> w
//   3x3          stride 1 (every block of v1, blocks 1.. of v1.5)
//   expand       1x1 w -> 4w, the residual added before the ReLU
//   downsample   block 0's 1x1 projection shortcut (.s2 beyond layer1): bias, no ReLU
// Weights are random: speed does not depend on their values. Timing: bench/op_bench.h.
#include <benchmark/benchmark.h>

#include "bench/bench_main.h"
#include "bench/op_bench.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/preprocess.h"

namespace caption {
namespace {

using namespace bench;

constexpr int kImage = 224;
constexpr int kWidth[4] = {64, 128, 256, 512};  // bottleneck width per stage; blocks output 4x

struct ConvClass {
  std::string name;
  ConvShape shape;  // N left 0: set per device
  bool residual, relu;
};

std::vector<ConvClass> conv_classes() {
  std::vector<ConvClass> out{{"conv1", {0, kImage, kImage, 3, 64, 7, 7, 2, 3}, false, true}};
  int in = 64, hw = kImage / 4;  // after conv1 and the max pool
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

void register_preprocess(Device d) {
  constexpr int B = 32;
  for (Normalization norm : {Normalization::Caffe, Normalization::Torch}) {
    const std::string label = norm == Normalization::Caffe ? "caffe" : "torch";
    add("preprocess", d, label + "/B:" + std::to_string(B), [=](benchmark::State& st, Context& ctx) {
      const size_t n = size_t(B) * kImage * kImage * 3;
      std::mt19937 rng(1);
      std::vector<uint8_t> host(n);
      for (auto& p : host) p = uint8_t(rng());
      PoolBuffer<uint8_t> images(ctx.pool(), n, ctx.exec().stream);
      ctx.upload(images.data(), host.data(), n);
      PoolBuffer<float> out(ctx.pool(), n, ctx.exec().stream);
      time_loop(st, ctx, [&](const Exec& ex) { preprocess_images(ex, images.data(), B, kImage, kImage, norm, out.data()); });
      set_bytes(st, double(n) * (1 + sizeof(float)));
    });
  }
}

void register_convs(Device d) {
  const int B = d == Device::CUDA ? 32 : 16;
  for (ConvClass c : conv_classes()) {
    c.shape.N = B;
    add("conv", d, c.name + "/B:" + std::to_string(B), [=](benchmark::State& st, Context& ctx) {
      const ConvShape& s = c.shape;
      const size_t out = size_t(B) * s.P() * s.Q() * s.K;
      auto x = random_floats(ctx, size_t(B) * s.H * s.W * s.C, 1, 0.f, 1.f),
           w = random_floats(ctx, size_t(s.K) * s.R * s.S * s.C, 2, -0.05f, 0.05f), b = random_floats(ctx, s.K, 3);
      PoolBuffer<float> y(ctx.pool(), out, ctx.exec().stream), res;
      if (c.residual) res = random_floats(ctx, out, 4);
      const ConvParams p{w.data(), b.data(), c.residual ? res.data() : nullptr, c.relu};
      time_loop(st, ctx, [&](const Exec& ex) { conv2d(ex, s, x.data(), p, y.data()); });
      set_flops(st, 2.0 * double(out) * s.C * s.R * s.S);
    });
  }
}

void register_all(Device d) {
  register_preprocess(d);
  register_convs(d);
}

}  // namespace
}  // namespace caption

int main(int argc, char** argv) { return caption::run_benchmarks(argc, argv, caption::register_all); }
