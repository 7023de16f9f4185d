// Caption decoding, on the CPU and, when a device answers, on CUDA:
//   decode_step/<dev>/B:<B>  one Decoder::step of B rows after begin_inference (token upload,
//       embedding, LSTM step, image branch, fc + ReLU, output layer, logsumexp) at B=32 (32
//       images greedy) and 96 (32 images x beam 3), random weights at the default model's
//       sizes (E=50, H=256, V=1660, D=1024). tokens_per_s: B per step.
//   decode/<dev>/beam:<K>/B:32  generate() (model/captioner.h) of 32 images, greedy (beam 1)
//       and beam 3, with the bundled model (models/flickr8k-resnet50c4) on the reference
//       features of the first 32 Flickr8k test images, so that captions have their real
//       lengths (the batch runs until its longest caption ends). Read from ../shared, or
//       $CAPTION_SHARED_DIR; skipped with the reason where they are absent. images_per_s, and
//       words_per_image (the mean caption length), which bench/compare.py checks against the
//       PyTorch greedy decode's.
// Timed by the wall clock, waiting for the device after each step: a decode loop brings each
// step's tokens back to the host before it can feed the next. On CUDA each also runs with
// --cuda-graphs (".../graphs": Decoder::use_graphs; the warm-up captures the step).
#include <benchmark/benchmark.h>

#include "bench/bench_main.h"
#include "bench/op_bench.h"

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "model/captioner.h"
#include "model/decoder.h"
#include "model/features.h"
#include "model/model_dir.h"
#include "model/read_file.h"

namespace caption {
namespace {

using namespace bench;

constexpr int kE = 50, kH = 256, kV = 1660, kD = 1024;
constexpr int kImages = 32;

void decode_step(benchmark::State& st, Device d, int B, bool graphs) {
  Context& ctx = context(d);
  const DecoderDims dims{kD, kE, kH, kV};
  Decoder dec(ctx, dims);
  dec.use_graphs(graphs);
  dec.set_flat(decoder_init(dims, 1), dec.params());
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<float> features(size_t(B) * kD);
  for (auto& x : features) x = u(rng);
  // A few rows of word ids, cycled through; skewed towards small ids, as frequent words come
  // first in the vocabulary.
  std::vector<std::vector<int32_t>> tokens(8, std::vector<int32_t>(B));
  for (auto& row : tokens)
    for (auto& t : row) {
      const float r = u(rng);
      t = 4 + int(float(kV - 4) * r * r);
    }
  auto state = dec.begin_inference(features.data(), B);
  dec.step(state, tokens[0].data());  // warm-up: the first launches
  ctx.synchronize();
  size_t i = 0;
  for (auto _ : st) {
    dec.step(state, tokens[i++ % tokens.size()].data());
    ctx.synchronize();
  }
  st.counters["tokens_per_s"] = benchmark::Counter(double(B), benchmark::Counter::kIsIterationInvariantRate);
}

// The bundled model and the features of the first kImages test images, read once.
struct Captioning {
  ModelFiles model;
  std::vector<float> features;  // [kImages, D]
  std::string missing;          // why there is nothing to decode, if so
};

const Captioning& captioning() {
  static const Captioning c = [] {
    Captioning out;
    const char* env = std::getenv("CAPTION_SHARED_DIR");
    const std::string flickr = (env && *env ? std::string(env) : std::string(CAPTION_SHARED_DIR)) + "/data/flickr8k";
    try {
      out.model = load_model_dir(CAPTION_DEFAULT_MODEL);
      const std::string text = read_file(flickr + "/text/Flickr_8k.testImages.txt");
      const FeatureTable table = read_features(flickr + "/features_resnet50c4.safetensors");
      for_each_line(text, [&](size_t, std::string_view line) {
        auto row = table.find(std::string(trim(line)));
        if (row && out.features.size() < size_t(kImages) * table.dim)
          out.features.insert(out.features.end(), table.row(*row), table.row(*row) + table.dim);
      });
      if (out.features.size() < size_t(kImages) * table.dim)
        out.missing = flickr + ": fewer than " + std::to_string(kImages) + " test images with features";
    } catch (const std::exception& e) {
      out.missing = e.what();
    }
    return out;
  }();
  return c;
}

void decode(benchmark::State& st, Device d, int beam, bool graphs) {
  const Captioning& c = captioning();
  if (!c.missing.empty()) {
    st.SkipWithError(("no real features to decode: " + c.missing).c_str());
    return;
  }
  const DecoderConfig& cfg = c.model.config.decoder;
  Decoder dec(context(d), {cfg.feature_dim, cfg.embed_dim, cfg.hidden_dim, c.model.vocab.size()});
  dec.load(c.model.decoder_weights, join_path(c.model.dir, cfg.weights));
  dec.use_graphs(graphs);
  DecodeOptions opt;
  opt.beam = beam;
  opt.max_len = cfg.max_len;
  opt.batch = kImages;
  size_t words = 0;
  for (const auto& caption : generate(dec, c.features.data(), kImages, opt)) words += caption.size();  // warm-up
  for (auto _ : st) benchmark::DoNotOptimize(generate(dec, c.features.data(), kImages, opt));
  st.counters["images_per_s"] = benchmark::Counter(kImages, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["words_per_image"] = double(words) / kImages;
}

void register_all(Device d) {
  const std::string dev = device_name(d);
  for (bool graphs : {false, true}) {
    if (graphs && d != Device::CUDA) continue;
    const std::string variant = graphs ? "/graphs" : "";
    for (int B : {kImages, 3 * kImages})
      benchmark::RegisterBenchmark(("decode_step/" + dev + "/B:" + std::to_string(B) + variant).c_str(),
                                   [=](benchmark::State& st) { decode_step(st, d, B, graphs); })
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
    for (int beam : {1, 3})
      benchmark::RegisterBenchmark(
          ("decode/" + dev + "/beam:" + std::to_string(beam) + "/B:" + std::to_string(kImages) + variant).c_str(),
          [=](benchmark::State& st) { decode(st, d, beam, graphs); })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
  }
}

}  // namespace
}  // namespace caption

int main(int argc, char** argv) { return caption::run_benchmarks(argc, argv, caption::register_all); }
