// One whole training step of the decoder (Decoder::train_step, then adam_step) as the trainer
// runs it, at B=64 and 256, on the CPU and, when a device answers, on CUDA.
// Two kinds of batch: every caption 14 tokens long (T=13 targets, no padding), and
// Flickr8k-like lengths padded to the longest caption of each batch ("T:flickr").
// bench/peer/train_step.py draws the very same token batches (same generator, same arithmetic)
// for the PyTorch side of bench/compare.py.
// Counters: tokens_per_s (non-padding targets per second, wall clock), tokens_per_step, and
// pool_allocs, the backing allocations (cudaMalloc on CUDA) made after warm-up: it must be 0.
// On the CPU also gemm_ms: the OpenBLAS products of the same steps replayed alone, per step,
// the floor under the step's time (the rest is the engine's own kernels and Adam).
// On CUDA each also runs with --cuda-graphs (".../graphs": Decoder::use_graphs), after a
// warm-up over every distinct batch has captured their graphs; graph_captures counts those.
#include <benchmark/benchmark.h>

#include "bench/bench_main.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/adam.h"
#include "kernels/gemm.h"
#include "model/decoder.h"
#include "runtime/context.h"

namespace caption {
namespace {

constexpr int kE = 50, kH = 256, kV = 1660, kD = 1024;
constexpr float kDropout = 0.3f;
constexpr int kDistinctBatches = 8;  // cycled through, so varied lengths vary between steps
constexpr uint64_t kTokenSeed = 2024;

Context& context(Device d) {
  static std::unique_ptr<Context> ctx[2];
  auto& c = ctx[d == Device::CUDA];
  if (!c) c = std::make_unique<Context>(d);
  return *c;
}

// SplitMix64: tiny, and reproducible bit for bit in Python (bench/peer/train_step.py).
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }
};

// Caption token lists <start>=1, words, <end>=2. Words per caption ~ N(11, 3.8) (Flickr8k's
// cleaned captions; the normal approximated by a sum of four uniforms) clipped to [1, 38], so
// that captions fit max_len 40; fixed_T > 0 gives every caption fixed_T - 1 words instead.
// Word ids 4..V-1 are skewed towards small ids (frequent words first, as in the vocabulary).
std::vector<TokenBatch> make_batches(int B, int fixed_T, int V, int D) {
  SplitMix64 rng{kTokenSeed};
  std::mt19937 feat_rng(7);
  std::uniform_real_distribution<float> feat(0.f, 1.f);
  std::vector<TokenBatch> batches(kDistinctBatches);
  for (auto& batch : batches) {
    std::vector<std::vector<int32_t>> caps(B);
    int longest = 0;
    for (auto& cap : caps) {
      int words = fixed_T - 1;
      if (fixed_T <= 0) {
        double u1 = rng.uniform(), u2 = rng.uniform(), u3 = rng.uniform(), u4 = rng.uniform();
        double z = (u1 + u2 + u3 + u4 - 2.0) * std::sqrt(3.0);
        words = std::clamp(int(std::floor(11.0 + 3.8 * z + 0.5)), 1, 38);
      }
      cap.push_back(1);
      for (int w = 0; w < words; ++w) {
        double u = rng.uniform();
        cap.push_back(4 + int(std::floor((V - 4) * (u * u))));
      }
      cap.push_back(2);
      longest = std::max(longest, int(cap.size()));
    }
    batch.B = B;
    batch.T = longest - 1;
    batch.tokens.assign(size_t(B) * longest, 0);
    for (int b = 0; b < B; ++b) std::copy(caps[b].begin(), caps[b].end(), batch.tokens.begin() + size_t(b) * longest);
    batch.features.resize(size_t(B) * D);
    for (auto& x : batch.features) x = feat(feat_rng);
  }
  return batches;
}

// Milliseconds per step of running the recorded products alone on filler data (best of three
// rounds of all of them), with their shapes, transposes, leading dimensions and betas.
double gemm_ms(const std::vector<GemmShape>& calls, size_t steps) {
  size_t a = 0, b = 0, c = 0;  // extents of the largest operands
  auto extent = [](Trans t, int rows, int cols, int ld) {  // op(X) is rows x cols
    return t == Trans::N ? size_t(rows - 1) * ld + cols : size_t(cols - 1) * ld + rows;
  };
  for (const GemmShape& g : calls) {
    a = std::max(a, extent(g.ta, g.M, g.K, g.lda));
    b = std::max(b, extent(g.tb, g.K, g.N, g.ldb));
    c = std::max(c, size_t(g.M - 1) * g.ldc + g.N);
  }
  std::vector<float> A(a, 0.01f), Bm(b, 0.01f), C(c, 0.f);
  double best = 1e300;
  for (int round = 0; round < 3; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    for (const GemmShape& g : calls)
      cpu::gemm(g.ta, g.tb, g.M, g.N, g.K, 1.f, A.data(), g.lda, Bm.data(), g.ldb, g.beta, C.data(), g.ldc);
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best / double(steps);
}

void train_step(benchmark::State& st, Device d, int B, int fixed_T, bool graphs) {
  Context& ctx = context(d);
  const DecoderDims dims{kD, kE, kH, kV};
  Decoder dec(ctx, dims);
  dec.use_graphs(graphs);
  dec.set_flat(decoder_init(dims, 1), dec.params());
  const size_t n = dec.num_params();
  const Stream s = ctx.exec().stream;
  PoolBuffer<float> m(ctx.pool(), n, s), v(ctx.pool(), n, s);
  ctx.zero(m.data(), n * sizeof(float));
  ctx.zero(v.data(), n * sizeof(float));
  const auto batches = make_batches(B, fixed_T, kV, kD);
  const Exec ex = ctx.exec();
  const AdamConfig adam;
  long step = 0;
  auto one_step = [&](const TokenBatch& b) {
    LossSum loss = dec.train_step(b, kDropout, 1234, uint64_t(step));
    adam_step(ex, dec.params(), dec.grads(), m.data(), v.data(), n, adam, ++step);
    return loss.count;
  };
  // Warm-up on the longest batch sizes the workspace once and for all; then every batch once
  // (the first launches of each shape, and the graphs' captures).
  one_step(*std::max_element(batches.begin(), batches.end(),
                             [](const TokenBatch& a, const TokenBatch& b) { return a.T < b.T; }));
  for (const auto& b : batches) one_step(b);
  ctx.synchronize();
  const size_t allocs = ctx.pool().stats().backing_allocs;
  int64_t tokens = 0;
  size_t i = 0;
  for (auto _ : st) {
    tokens += one_step(batches[i++ % batches.size()]);
    ctx.synchronize();
  }
  st.counters["tokens_per_s"] = benchmark::Counter(double(tokens), benchmark::Counter::kIsRate);
  st.counters["tokens_per_step"] = double(tokens) / double(std::max<int64_t>(1, st.iterations()));
  st.counters["pool_allocs"] = double(ctx.pool().stats().backing_allocs - allocs);
  if (d == Device::CPU) {
    std::vector<GemmShape> calls;
    cpu::record_gemms(&calls);
    for (const auto& b : batches) one_step(b);
    cpu::record_gemms(nullptr);
    st.counters["gemm_ms"] = gemm_ms(calls, batches.size());
  }
  if (dec.graphs()) st.counters["graph_captures"] = double(dec.graphs()->captures());
}

void register_all(Device d) {
  for (bool graphs : {false, true}) {
    if (graphs && d != Device::CUDA) continue;
    for (int B : {64, 256})
      for (int T : {13, 0}) {
        std::string name = std::string("train_step/") + device_name(d) + "/B:" + std::to_string(B) +
                           "/T:" + (T > 0 ? std::to_string(T) : "flickr") + (graphs ? "/graphs" : "");
        benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { train_step(st, d, B, T, graphs); })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
  }
}

}  // namespace
}  // namespace caption

int main(int argc, char** argv) { return caption::run_benchmarks(argc, argv, caption::register_all); }
