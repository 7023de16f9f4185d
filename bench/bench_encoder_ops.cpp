// The encoder's ops one by one, on the CPU and, when a device answers, on CUDA:
//   preprocess/<dev>/<norm>/B:32  uint8 RGB [32,224,224,3] -> normalised float NHWC
//       (kernels/preprocess.h), both normalisations; bytes_per_s counts the bytes read plus
//       written (3 + 12 per pixel).
//   conv/<dev>/<class>/B:<B>  each distinct convolution of ResNet50 at 224x224 through
//       kernels/conv2d.h with the epilogue the network fuses into it; flop_per_s counts
//       2*N*P*Q*K*C*R*S. B is the batch each backend's encoder runs its convolutions at: 32 on
//       CUDA, 16 on the CPU, which runs a batch in pieces of 16 images (model/resnet50.h);
//       bench/peer/encoder_ops.py uses the same B per device.
//   (the classes: bench/conv_classes.h)
// Weights are random: speed does not depend on their values. Timing: bench/op_bench.h.
#include <benchmark/benchmark.h>

#include "bench/bench_main.h"
#include "bench/conv_classes.h"
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

void register_preprocess(Device d) {
  constexpr int B = 32;
  for (Normalization norm : {Normalization::Caffe, Normalization::Torch}) {
    const std::string label = norm == Normalization::Caffe ? "caffe" : "torch";
    add("preprocess", d, label + "/B:" + std::to_string(B), [=](benchmark::State& st, Context& ctx) {
      const size_t n = size_t(B) * kConvImage * kConvImage * 3;
      std::mt19937 rng(1);
      std::vector<uint8_t> host(n);
      for (auto& p : host) p = uint8_t(rng());
      PoolBuffer<uint8_t> images(ctx.pool(), n, ctx.exec().stream);
      ctx.upload(images.data(), host.data(), n);
      PoolBuffer<float> out(ctx.pool(), n, ctx.exec().stream);
      time_loop(st, ctx, [&](const Exec& ex) { preprocess_images(ex, images.data(), B, kConvImage, kConvImage, norm, out.data()); });
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
      ConvParams p{w.data(), b.data(), c.residual ? res.data() : nullptr, c.relu};
      // The CPU kernel's weights packed once, outside the timing, as the encoder packs them at load.
      std::vector<float> packed;
      if (d == Device::CPU) {
        packed.resize(cpu::conv_packed_weights_size(s));
        cpu::pack_conv_weights(s, w.data(), packed.data());
        p.w_packed = packed.data();
      }
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
