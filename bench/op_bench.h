#pragma once
// What every per-op benchmark shares (bench_kernels, bench_encoder_ops): one Context per
// backend for the whole run, random inputs, the timing loop and the rate counters that
// bench/compare.py reads. Names read "<op>/<device>/<shape>".
//
// CPU ops are timed by the wall clock (OpenBLAS runs threads of its own, so the benchmark
// thread's CPU time would understate them). CUDA ops are timed by events around each
// iteration's launches (manual time), so host-side launch latency counts only where the
// GPU idles waiting for it.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "runtime/context.h"

namespace caption::bench {

// Pool chunks and cuBLAS/cuDNN state stay warm across benchmarks, as in a real run.
inline Context& context(Device d) {
  static std::unique_ptr<Context> ctx[2];
  auto& c = ctx[d == Device::CUDA];
  if (!c) c = std::make_unique<Context>(d);
  return *c;
}

// n uniform floats in [lo, hi): one random block of at most 2^20 values, repeated. The values
// only need to keep the arithmetic busy, and drawing the gigabytes of the largest benchmarks on
// the host would take longer than timing them.
inline PoolBuffer<float> random_floats(Context& ctx, size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  const size_t block = std::min<size_t>(n, size_t(1) << 20);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> host(block);
  for (auto& x : host) x = dist(rng);
  PoolBuffer<float> buf(ctx.pool(), n, ctx.exec().stream);
  if (n == 0) return buf;
  ctx.upload(buf.data(), host.data(), block * sizeof(float));
  for (size_t i = block; i < n; i += block)
    ctx.copy(buf.data() + i, buf.data(), std::min(block, n - i) * sizeof(float));
  return buf;
}

// Runs `body` once untimed (pool chunks, cuBLAS workspaces, cuDNN plans), then times it.
// `prepare` runs untimed before each iteration, for ops that clobber an input.
inline void time_loop(benchmark::State& st, Context& ctx, const std::function<void(const Exec&)>& body,
                      const std::function<void()>& prepare = {}) {
  const Exec ex = ctx.exec();
  if (prepare) prepare();
  body(ex);
  ctx.synchronize();
  if (ctx.device() == Device::CUDA) {
    Event start(Device::CUDA, true), stop(Device::CUDA, true);
    for (auto _ : st) {
      if (prepare) prepare();
      start.record(ex.stream);
      body(ex);
      stop.record(ex.stream);
      stop.synchronize();
      st.SetIterationTime(double(stop.elapsed_ms_since(start)) * 1e-3);
    }
    return;
  }
  for (auto _ : st) {
    if (prepare) {
      st.PauseTiming();
      prepare();
      st.ResumeTiming();
    }
    body(ex);
  }
}

inline void set_bytes(benchmark::State& st, double bytes_per_iter) {
  st.counters["bytes_per_s"] = benchmark::Counter(bytes_per_iter, benchmark::Counter::kIsIterationInvariantRate);
}
inline void set_flops(benchmark::State& st, double flops_per_iter) {
  st.counters["flop_per_s"] = benchmark::Counter(flops_per_iter, benchmark::Counter::kIsIterationInvariantRate);
}

using Bench = std::function<void(benchmark::State&, Context&)>;

inline void add(const std::string& op, Device d, const std::string& shape, Bench fn) {
  auto* b = benchmark::RegisterBenchmark((op + "/" + device_name(d) + "/" + shape).c_str(),
                                         [d, fn](benchmark::State& st) { fn(st, context(d)); });
  b->Unit(benchmark::kMicrosecond);
  if (d == Device::CUDA) b->UseManualTime();
  else b->UseRealTime();
}

}  // namespace caption::bench
