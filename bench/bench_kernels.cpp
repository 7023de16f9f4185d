// Per-op benchmarks at the decoder's real shapes (E=50, H=256, V=1660, D=1024; B=64 and 256;
// T=13, the mean Flickr8k caption, and T=39, the longest), on the CPU and, when a device
// answers, on CUDA, where the memory-bound ones also run at B=8192 T=39 (kBandwidthShape).
// Names read "<op>/<device>/B:<B>/T:<T>"; bench/compare.py matches them with the PyTorch peer.
// Counters: bytes_per_s for memory-bound ops (bytes read plus bytes written), flop_per_s for the
// ops whose cost is GEMMs.
//
// Two ceilings, measured in the same run, that compare.py reads the rates against: "copy"
// (device-to-device cudaMemcpyAsync of 1 GiB; on the CPU std::memcpy of 256 MiB on the
// engine's threads), counted as read + write like the ops, and "sgemm_peak" (a square SGEMM
// through kernels/gemm.h: the engine's cuBLAS handle and its pedantic FP32, 8192^3; OpenBLAS
// 2048^3 on the CPU). The handle has no TF32 mode, so there is no TF32 ceiling.
//
// Timing, and the one Context per backend: bench/op_bench.h.
#include <benchmark/benchmark.h>

#include "bench/bench_main.h"
#include "bench/op_bench.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/adam.h"
#include "kernels/broadcast_add.h"
#include "kernels/dense.h"
#include "kernels/dropout.h"
#include "kernels/embedding.h"
#include "kernels/gemm.h"
#include "kernels/grad_norm.h"
#include "kernels/lstm.h"
#include "kernels/parallel.h"
#include "kernels/softmax_xent.h"
#include "model/decoder.h"
#include "runtime/context.h"

namespace caption {
namespace {

using namespace bench;

constexpr int kE = 50, kH = 256, kV = 1660, kD = 1024;
constexpr float kDropout = 0.3f;

struct Shape {
  int B, T;
};
// Token-level ops run at every shape; ops on one row per caption (img_fc) only at each B.
const Shape kShapes[] = {{64, 13}, {256, 13}, {64, 39}, {256, 39}};
const int kBatches[] = {64, 256};
// Issue #5's memory-bound token ops once more at 8192 captions of 39 tokens, on CUDA only: a call
// moves 65 MB (embedding backward) to 4.2 GB (softmax + cross-entropy backward) there, while at
// the model's own shapes a call on a GPU takes little longer than its launch.
constexpr Shape kBandwidthShape{8192, 39};

// Token ids in [lo, V) skewed towards small ids (frequent words come first in the vocabulary,
// so embedding-gradient rows collide as they do on real captions); a fraction `pad` are 0.
PoolBuffer<int32_t> random_ids(Context& ctx, size_t n, int V, uint32_t seed, float pad = 0.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<int32_t> host(n);
  for (auto& id : host) {
    float r = u(rng);
    id = u(rng) < pad ? 0 : 1 + std::min(V - 2, int(float(V - 1) * r * r));
  }
  PoolBuffer<int32_t> buf(ctx.pool(), n, ctx.exec().stream);
  ctx.upload(buf.data(), host.data(), n * sizeof(int32_t));
  return buf;
}

std::string shape_name(int B, int T) { return "B:" + std::to_string(B) + "/T:" + std::to_string(T); }

// bandwidth_only: just the ops of the bandwidth goal (embedding backward, dropout, softmax +
// cross-entropy).
void register_token_ops(Device d, int B, int T, bool bandwidth_only = false) {
  const int N = B * T;
  const std::string shape = shape_name(B, T);
  const double f = sizeof(float);

  if (!bandwidth_only) add("embedding_fwd", d, shape, [=](benchmark::State& st, Context& ctx) {
    auto table = random_floats(ctx, size_t(kV) * kE, 1), out = random_floats(ctx, size_t(N) * kE, 2);
    auto ids = random_ids(ctx, N, kV, 3);
    time_loop(st, ctx, [&](const Exec& ex) { embedding_forward(ex, table.data(), ids.data(), N, kE, out.data()); });
    set_bytes(st, 2.0 * N * kE * f + N * 4.0);
  });
  add("embedding_bwd", d, shape, [=](benchmark::State& st, Context& ctx) {
    auto dout = random_floats(ctx, size_t(N) * kE, 1), dtable = random_floats(ctx, size_t(kV) * kE, 2);
    auto ids = random_ids(ctx, N, kV, 3, 0.1f);
    time_loop(st, ctx, [&](const Exec& ex) {
      embedding_backward(ex, dout.data(), ids.data(), N, kE, kV, 0, dtable.data());
    });
    set_bytes(st, double(N) * kE * f + N * 4.0 + double(kV) * kE * f);
  });

  add("dropout_fwd", d, shape, [=](benchmark::State& st, Context& ctx) {
    const size_t n = size_t(N) * kE;
    auto x = random_floats(ctx, n, 1), y = random_floats(ctx, n, 2);
    uint64_t step = 0;
    time_loop(st, ctx, [&](const Exec& ex) { dropout_forward(ex, x.data(), y.data(), n, kDropout, 7, ++step << 32); });
    set_bytes(st, 2.0 * n * f);
  });
  add("dropout_bwd", d, shape, [=](benchmark::State& st, Context& ctx) {
    const size_t n = size_t(N) * kE;
    auto dy = random_floats(ctx, n, 1), dx = random_floats(ctx, n, 2);
    uint64_t step = 0;
    time_loop(st, ctx, [&](const Exec& ex) { dropout_backward(ex, dy.data(), dx.data(), n, kDropout, 7, ++step << 32); });
    set_bytes(st, 2.0 * n * f);
  });

  add("softmax_xent_fwd", d, shape, [=](benchmark::State& st, Context& ctx) {
    auto logits = random_floats(ctx, size_t(N) * kV, 1, -4.f, 4.f), loss = random_floats(ctx, N, 2),
         lse = random_floats(ctx, N, 3);
    auto targets = random_ids(ctx, N, kV, 4, 0.1f);
    time_loop(st, ctx, [&](const Exec& ex) {
      softmax_xent_forward(ex, logits.data(), targets.data(), N, kV, loss.data(), lse.data());
    });
    set_bytes(st, double(N) * kV * f + N * 12.0);
  });
  add("softmax_xent_bwd", d, shape, [=](benchmark::State& st, Context& ctx) {
    auto logits = random_floats(ctx, size_t(N) * kV, 1, -4.f, 4.f), loss = random_floats(ctx, N, 2),
         lse = random_floats(ctx, N, 3), dlogits = random_floats(ctx, size_t(N) * kV, 4);
    auto targets = random_ids(ctx, N, kV, 5, 0.1f);
    softmax_xent_forward(ctx.exec(), logits.data(), targets.data(), N, kV, loss.data(), lse.data());
    time_loop(st, ctx, [&](const Exec& ex) {
      softmax_xent_backward(ex, logits.data(), targets.data(), lse.data(), N, kV, 1.f / N, dlogits.data());
    });
    set_bytes(st, 2.0 * N * kV * f + N * 8.0);
  });
  if (bandwidth_only) return;

  // LSTM: 4H x (E+H) multiply-adds per token forward (input projection + recurrence), twice
  // that backward (input and weight gradients of both GEMMs); the gate math is not counted.
  const double lstm_flops = 2.0 * N * 4 * kH * (kE + kH);
  add("lstm_fwd", d, shape, [=](benchmark::State& st, Context& ctx) {
    auto x = random_floats(ctx, size_t(N) * kE, 1), w_ih = random_floats(ctx, 4 * kH * kE, 2, -0.06f, 0.06f),
         w_hh = random_floats(ctx, 4 * kH * kH, 3, -0.06f, 0.06f), b_ih = random_floats(ctx, 4 * kH, 4, -0.06f, 0.06f),
         b_hh = random_floats(ctx, 4 * kH, 5, -0.06f, 0.06f);
    PoolBuffer<float> h(ctx.pool(), size_t(N) * kH, ctx.exec().stream), c(ctx.pool(), size_t(N) * kH, ctx.exec().stream),
        gates(ctx.pool(), size_t(N) * 4 * kH, ctx.exec().stream);
    time_loop(st, ctx, [&](const Exec& ex) {
      lstm_forward(ex, {B, T, kE, kH}, x.data(), {w_ih.data(), w_hh.data(), b_ih.data(), b_hh.data()},
                   {h.data(), c.data(), gates.data()});
    });
    set_flops(st, lstm_flops);
  });
  add("lstm_bwd", d, shape, [=](benchmark::State& st, Context& ctx) {
    auto x = random_floats(ctx, size_t(N) * kE, 1), w_ih = random_floats(ctx, 4 * kH * kE, 2, -0.06f, 0.06f),
         w_hh = random_floats(ctx, 4 * kH * kH, 3, -0.06f, 0.06f), b_ih = random_floats(ctx, 4 * kH, 4, -0.06f, 0.06f),
         b_hh = random_floats(ctx, 4 * kH, 5, -0.06f, 0.06f);
    const Stream s = ctx.exec().stream;
    PoolBuffer<float> h(ctx.pool(), size_t(N) * kH, s), c(ctx.pool(), size_t(N) * kH, s),
        gates(ctx.pool(), size_t(N) * 4 * kH, s), dh(ctx.pool(), size_t(N) * kH, s), dx(ctx.pool(), size_t(N) * kE, s),
        gw_ih(ctx.pool(), 4 * kH * kE, s), gw_hh(ctx.pool(), 4 * kH * kH, s), gb_ih(ctx.pool(), 4 * kH, s),
        gb_hh(ctx.pool(), 4 * kH, s);
    auto dh0 = random_floats(ctx, size_t(N) * kH, 6, -0.01f, 0.01f);
    const LstmWeights w{w_ih.data(), w_hh.data(), b_ih.data(), b_hh.data()};
    const LstmActivations act{h.data(), c.data(), gates.data()};
    lstm_forward(ctx.exec(), {B, T, kE, kH}, x.data(), w, act);
    time_loop(
        st, ctx,
        [&](const Exec& ex) {
          lstm_backward(ex, {B, T, kE, kH}, x.data(), w, act, dh.data(), dx.data(),
                        {gw_ih.data(), gw_hh.data(), gb_ih.data(), gb_hh.data()});
        },
        [&] { ctx.copy(dh.data(), dh0.data(), dh.size() * sizeof(float)); });  // dh is clobbered
    set_flops(st, 2 * lstm_flops);
  });

  add("broadcast_add_fwd", d, shape, [=](benchmark::State& st, Context& ctx) {
    auto h = random_floats(ctx, size_t(N) * kH, 1), a = random_floats(ctx, size_t(B) * kH, 2),
         out = random_floats(ctx, size_t(N) * kH, 3);
    time_loop(st, ctx, [&](const Exec& ex) { broadcast_add(ex, h.data(), a.data(), out.data(), B, T, kH); });
    set_bytes(st, 2.0 * N * kH * f + double(B) * kH * f);
  });
  add("broadcast_add_bwd", d, shape, [=](benchmark::State& st, Context& ctx) {
    auto dout = random_floats(ctx, size_t(N) * kH, 1), da = random_floats(ctx, size_t(B) * kH, 2);
    time_loop(st, ctx, [&](const Exec& ex) { broadcast_add_backward(ex, dout.data(), da.data(), B, T, kH); });
    set_bytes(st, double(N) * kH * f + double(B) * kH * f);
  });

  // The two token-level dense layers: fc (256 -> 256, ReLU) and out (256 -> V).
  struct Dense {
    const char* name;
    int N, K;
    Activation act;
  };
  for (Dense L : {Dense{"dense_fc", kH, kH, Activation::ReLU}, Dense{"dense_out", kV, kH, Activation::None}}) {
    add(std::string(L.name) + "_fwd", d, shape, [=](benchmark::State& st, Context& ctx) {
      auto x = random_floats(ctx, size_t(N) * L.K, 1), W = random_floats(ctx, size_t(L.N) * L.K, 2, -0.06f, 0.06f),
           b = random_floats(ctx, L.N, 3), y = random_floats(ctx, size_t(N) * L.N, 4);
      time_loop(st, ctx, [&](const Exec& ex) { dense_forward(ex, x.data(), W.data(), b.data(), y.data(), N, L.N, L.K, L.act); });
      set_flops(st, 2.0 * N * L.N * L.K);
    });
    add(std::string(L.name) + "_bwd", d, shape, [=](benchmark::State& st, Context& ctx) {
      auto x = random_floats(ctx, size_t(N) * L.K, 1), W = random_floats(ctx, size_t(L.N) * L.K, 2, -0.06f, 0.06f),
           y = random_floats(ctx, size_t(N) * L.N, 3), dy = random_floats(ctx, size_t(N) * L.N, 4, -0.01f, 0.01f),
           dx = random_floats(ctx, size_t(N) * L.K, 5), dW = random_floats(ctx, size_t(L.N) * L.K, 6),
           db = random_floats(ctx, L.N, 7);
      // dy only loses its ReLU-masked entries, the same ones each time: no need to restore it.
      time_loop(st, ctx, [&](const Exec& ex) {
        dense_backward(ex, x.data(), W.data(), y.data(), dy.data(), dx.data(), dW.data(), db.data(), N, L.N, L.K, L.act);
      });
      set_flops(st, 4.0 * N * L.N * L.K);
    });
  }
}

void register_batch_ops(Device d, int B) {
  const std::string shape = "B:" + std::to_string(B);
  const double f = sizeof(float);
  add("dense_img_fwd", d, shape, [=](benchmark::State& st, Context& ctx) {
    auto x = random_floats(ctx, size_t(B) * kD, 1, 0.f, 1.f), W = random_floats(ctx, size_t(kH) * kD, 2, -0.03f, 0.03f),
         b = random_floats(ctx, kH, 3), y = random_floats(ctx, size_t(B) * kH, 4);
    time_loop(st, ctx, [&](const Exec& ex) {
      dense_forward(ex, x.data(), W.data(), b.data(), y.data(), B, kH, kD, Activation::ReLU);
    });
    set_flops(st, 2.0 * B * kH * kD);
  });
  add("dense_img_bwd", d, shape, [=](benchmark::State& st, Context& ctx) {
    auto x = random_floats(ctx, size_t(B) * kD, 1, 0.f, 1.f), W = random_floats(ctx, size_t(kH) * kD, 2, -0.03f, 0.03f),
         y = random_floats(ctx, size_t(B) * kH, 3), dy = random_floats(ctx, size_t(B) * kH, 4),
         dW = random_floats(ctx, size_t(kH) * kD, 5), db = random_floats(ctx, kH, 6);
    // The image features need no gradient (dx = null), as in the decoder.
    time_loop(st, ctx, [&](const Exec& ex) {
      dense_backward(ex, x.data(), W.data(), y.data(), dy.data(), nullptr, dW.data(), db.data(), B, kH, kD,
                     Activation::ReLU);
    });
    set_flops(st, 2.0 * B * kH * kD);
  });
  add("dropout_feat_fwd", d, shape, [=](benchmark::State& st, Context& ctx) {
    const size_t n = size_t(B) * kD;
    auto x = random_floats(ctx, n, 1), y = random_floats(ctx, n, 2);
    uint64_t step = 0;
    time_loop(st, ctx, [&](const Exec& ex) { dropout_forward(ex, x.data(), y.data(), n, kDropout, 7, ++step << 32); });
    set_bytes(st, 2.0 * n * f);
  });
  // Inference: one decoding step of B beams or captions (on CUDA the fused kernel up to
  // cuda::kLstmFusedStepMaxRows rows), and on CUDA the cuBLAS route at every B beside it.
  using StepFn = void (*)(const Exec&, int, int, int, const float*, const LstmWeights&, float*, float*, float*);
  auto step_bench = [=](StepFn step) {
    return [=](benchmark::State& st, Context& ctx) {
      auto x = random_floats(ctx, size_t(B) * kE, 1), w_ih = random_floats(ctx, 4 * kH * kE, 2, -0.06f, 0.06f),
           w_hh = random_floats(ctx, 4 * kH * kH, 3, -0.06f, 0.06f),
           b_ih = random_floats(ctx, 4 * kH, 4, -0.06f, 0.06f), b_hh = random_floats(ctx, 4 * kH, 5, -0.06f, 0.06f),
           h = random_floats(ctx, size_t(B) * kH, 6), c = random_floats(ctx, size_t(B) * kH, 7),
           gates = random_floats(ctx, size_t(B) * 4 * kH, 8);
      time_loop(st, ctx, [&](const Exec& ex) {
        step(ex, B, kE, kH, x.data(), {w_ih.data(), w_hh.data(), b_ih.data(), b_hh.data()}, h.data(), c.data(),
             gates.data());
      });
      set_flops(st, 2.0 * B * 4 * kH * (kE + kH));
    };
  };
  add("lstm_step", d, shape, step_bench(lstm_step));
#if CAPTION_HAS_CUDA
  if (d == Device::CUDA) add("lstm_step_gemm", d, shape, step_bench(cuda::lstm_step_gemm));
#endif
}

void register_param_ops(Device d, size_t n) {
  const std::string shape = "P:" + std::to_string(n);
  const double f = sizeof(float);
  add("adam", d, shape, [=](benchmark::State& st, Context& ctx) {
    auto p = random_floats(ctx, n, 1), g = random_floats(ctx, n, 2, -0.01f, 0.01f), m = random_floats(ctx, n, 3, -0.01f, 0.01f),
         v = random_floats(ctx, n, 4, 0.f, 1e-4f);
    long step = 0;
    time_loop(st, ctx, [&](const Exec& ex) { adam_step(ex, p.data(), g.data(), m.data(), v.data(), n, AdamConfig{}, ++step); });
    set_bytes(st, 7.0 * n * f);  // reads p, g, m, v; writes p, m, v
  });
  add("grad_norm", d, shape, [=](benchmark::State& st, Context& ctx) {
    auto g = random_floats(ctx, n, 1, -0.01f, 0.01f);
    float sink = 0;
    time_loop(st, ctx, [&](const Exec& ex) { sink += global_norm(ex, g.data(), n); });  // waits for the result
    benchmark::DoNotOptimize(sink);
    set_bytes(st, double(n) * f);
  });
  add("grad_scale", d, shape, [=](benchmark::State& st, Context& ctx) {
    auto g = random_floats(ctx, n, 1, -0.01f, 0.01f);
    time_loop(st, ctx, [&](const Exec& ex) { scale(ex, g.data(), n, 1.f); });
    set_bytes(st, 2.0 * n * f);
  });
}

// Optimizer and gradient norm over the decoder's whole flat parameter buffer (~1.15M floats,
// 32 MB of Adam traffic: on a GPU a call is not much longer than its launch) and over 16M
// floats (448 MB), where what is measured is the kernel's use of the memory bandwidth.
void register_param_ops(Device d) {
  const size_t model = [] {
    auto specs = decoder_param_specs({kD, kE, kH, kV});
    return specs.back().offset + specs.back().numel;
  }();
  for (size_t n : {model, size_t(1) << 24}) register_param_ops(d, n);
}

// The ceilings compare.py reads the ops' rates against (see the top of the file).
void register_references(Device d) {
  const bool gpu = d == Device::CUDA;
  const size_t copy_bytes = size_t(gpu ? 1024 : 256) << 20;
  add("copy", d, "MiB:" + std::to_string(copy_bytes >> 20), [=](benchmark::State& st, Context& ctx) {
    {
      const Stream s = ctx.exec().stream;
      const size_t n = copy_bytes / sizeof(float);
      PoolBuffer<float> src(ctx.pool(), n, s), dst(ctx.pool(), n, s);
      ctx.zero(src.data(), copy_bytes);  // touches the pages (CPU) before the timed copies
      ctx.zero(dst.data(), copy_bytes);
      time_loop(st, ctx, [&](const Exec& ex) {
        if (ex.cuda()) {
          ctx.copy(dst.data(), src.data(), copy_bytes);  // cudaMemcpyAsync on ex.stream
          return;
        }
        // The engine's CPU kernels run on parallel_for's threads: so does their ceiling.
        constexpr size_t kItem = size_t(1) << 20;
        char* out = reinterpret_cast<char*>(dst.data());
        const char* in = reinterpret_cast<const char*>(src.data());
        cpu::parallel_for((copy_bytes + kItem - 1) / kItem, true, [=](size_t k) {
          const size_t off = k * kItem;
          std::memcpy(out + off, in + off, std::min(kItem, copy_bytes - off));
        });
      });
      set_bytes(st, 2.0 * double(copy_bytes));
    }
    ctx.pool().release_unused();  // the next benchmarks need none of these large chunks
  });
  const int n = gpu ? 8192 : 2048;
  add("sgemm_peak", d, "N:" + std::to_string(n), [=](benchmark::State& st, Context& ctx) {
    {
      const size_t nn = size_t(n) * n;
      auto A = random_floats(ctx, nn, 1), B = random_floats(ctx, nn, 2);
      PoolBuffer<float> C(ctx.pool(), nn, ctx.exec().stream);
      time_loop(st, ctx, [&](const Exec& ex) {
        gemm(ex, Trans::N, Trans::N, n, n, n, 1.f, A.data(), n, B.data(), n, 0.f, C.data(), n);
      });
      set_flops(st, 2.0 * n * n * double(n));
    }
    ctx.pool().release_unused();
  });
}

void register_all(Device d) {
  for (Shape s : kShapes) register_token_ops(d, s.B, s.T);
  if (d == Device::CUDA) register_token_ops(d, kBandwidthShape.B, kBandwidthShape.T, true);
  for (int B : kBatches) register_batch_ops(d, B);
  register_param_ops(d);
  register_references(d);  // last: measured on a device already at its working clocks
}

}  // namespace
}  // namespace caption

int main(int argc, char** argv) { return caption::run_benchmarks(argc, argv, caption::register_all); }
