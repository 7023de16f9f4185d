// The ResNet50 encoder from uint8 images to features (preprocessing, every convolution,
// pooling, transfers), at batch 1, 32 and 256 for the 4-stage C4 trunk of the default model
// and the full 5-stage network, on the CPU and, when a device answers, on CUDA (FP32, TF32 and
// bfloat16, NHWC with cuDNN's heuristic algorithm choice, the defaults; for the C4 trunk at batch
// 32 and 256 also the other layout and timed algorithm choice in FP32, "fp32-nchw", "fp32-timed",
// "fp32-nchw-timed", and the convolutions as cuBLASLt matmuls, "fp32-matmul", "bf16-matmul").
// Weights are random: speed does not depend on their values.
// Counters: images_per_s and flop_per_s (multiply-adds x2 of the convolutions).
#include <benchmark/benchmark.h>

#include "bench/bench_main.h"

#include <random>
#include <string>
#include <utility>
#include <vector>

#include "model/resnet50.h"

namespace caption {
namespace {

constexpr int kBlocks[4] = {3, 4, 6, 3}, kWidth[4] = {64, 128, 256, 512};  // for the FLOP count

std::map<std::string, Tensor> random_weights(int stages) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-0.05f, 0.05f);
  std::map<std::string, Tensor> w;
  for (const auto& [name, shape] : resnet50_tensor_shapes(stages)) {
    Tensor t{shape, {}};
    size_t n = 1;
    for (auto d : shape) n *= size_t(d);
    // Convolutions random; BN the identity (gamma 1, var 1, beta 0, mean 0).
    auto ends = [&](const std::string& tail) {
      return name.size() >= tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
    };
    bool one = ends("running_var") || (shape.size() == 1 && ends(".weight"));
    t.data.assign(n, one ? 1.f : 0.f);
    if (shape.size() == 4)
      for (auto& x : t.data) x = u(rng);
    w[name] = std::move(t);
  }
  return w;
}

// Convolution FLOPs of one 224x224 image (2 per multiply-add), counted from the layer shapes.
double conv_flops(int stages, bool stride_in_1x1) {
  double f = 2.0 * 112 * 112 * 64 * 3 * 49;
  int in = 64, hw = 56;
  for (int l = 0; l < stages - 1; ++l)
    for (int b = 0; b < kBlocks[l]; ++b) {
      const int s = l > 0 && b == 0 ? 2 : 1, out = hw / s, w = kWidth[l];
      const int hw1 = stride_in_1x1 ? out : hw;
      f += 2.0 * hw1 * hw1 * w * in + 2.0 * out * out * w * w * 9 + 2.0 * out * out * 4 * w * w;
      if (b == 0) f += 2.0 * out * out * 4 * w * in;
      in = 4 * w;
      hw = out;
    }
  return f;
}

void encode(benchmark::State& st, Device d, int stages, int B, const EncoderOptions& options) {
  static Context* ctx[2] = {nullptr, nullptr};
  auto*& c = ctx[d == Device::CUDA];
  if (!c) c = new Context(d);  // lives for the process: its cuDNN plans and pool stay warm
  EncoderConfig cfg;
  cfg.stages = stages;
  cfg.stride_in_1x1 = stages == 4;  // the default model's MSRA trunk; torchvision v1.5 otherwise
  cfg.preprocess = stages == 4 ? Normalization::Caffe : Normalization::Torch;
  ResNet50 net(*c, cfg, random_weights(stages), "random", options);
  std::vector<uint8_t> images(size_t(B) * 224 * 224 * 3);
  std::mt19937 rng(1);
  for (auto& p : images) p = uint8_t(rng());
  std::vector<float> features(size_t(B) * net.feature_dim());
  net.encode(images.data(), B, features.data());  // warm-up: buffers, cuDNN algorithm choice
  for (auto _ : st) net.encode(images.data(), B, features.data());
  st.counters["images_per_s"] = benchmark::Counter(double(B) * st.iterations(), benchmark::Counter::kIsRate);
  st.counters["flop_per_s"] =
      benchmark::Counter(conv_flops(stages, cfg.stride_in_1x1) * B * st.iterations(), benchmark::Counter::kIsRate);
}

void register_all(Device d) {
  std::vector<std::pair<std::string, EncoderOptions>> modes = {{"fp32", {}}};
  if (d == Device::CUDA) {
    modes.push_back({"tf32", {true}});
    modes.push_back({"bf16", {false, Layout::NHWC, ConvSearch::Heuristic, true}});
    for (auto layout : {Layout::NHWC, Layout::NCHW})
      for (auto search : {ConvSearch::Heuristic, ConvSearch::Timed}) {
        if (layout == Layout::NHWC && search == ConvSearch::Heuristic) continue;  // "fp32"
        const std::string name = std::string("fp32") + (layout == Layout::NCHW ? "-nchw" : "") +
                                 (search == ConvSearch::Timed ? "-timed" : "");
        modes.push_back({name, {false, layout, search}});
      }
    modes.push_back({"fp32-matmul", {false, Layout::NHWC, ConvSearch::Matmul}});
    modes.push_back({"bf16-matmul", {false, Layout::NHWC, ConvSearch::Matmul, true}});
  }
  for (int stages : {4, 5})
    for (int B : {1, 32, 256})
      for (const auto& [mode, options] : modes) {
        // The layout / algorithm-choice variants at the batches the goal is about (the GPU check's
        // time is short).
        if ((stages == 5 || B == 1) && mode.find('-') != std::string::npos) continue;
        std::string name = std::string("encoder/") + device_name(d) + "/stages:" + std::to_string(stages) +
                           "/B:" + std::to_string(B) + "/" + mode;
        benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { encode(st, d, stages, B, options); })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
}

}  // namespace
}  // namespace caption

int main(int argc, char** argv) { return caption::run_benchmarks(argc, argv, caption::register_all); }
