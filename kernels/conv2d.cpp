#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/parallel.h"
#include "kernels/vec_math.h"

namespace caption::cpu {

namespace {

using vec::vf;
using vec::kLanes;

// A tile is kPixels output pixels by kVecs vectors of output channels, its accumulators held in
// registers: 24 of AVX-512's 32, 12 of AVX2's or SSE's 16, with room for the weight vectors and
// the broadcast input. Per input channel a tile loads kVecs weight vectors and kPixels inputs
// for kPixels * kVecs multiply-adds.
constexpr int kPixels = 6;
constexpr int kVecs = kLanes == 16 ? 4 : 2;
constexpr int kBlock = kVecs * kLanes;  // output channels of a tile, and of a packed weight block
// Tiles per parallel work item: a few hundred output pixels, tens of microseconds.
constexpr int64_t kTilesPerItem = 16;

// Output pixel m = (n, p, q) -> its image and the top-left input position of its window.
struct Window {
  int64_t n;
  int h, w;
};

// Accumulates one tile of `kM` consecutive output pixels (kM = kPixels, or 1 for the last few)
// over every (r, s, c) in that order, then stores act(acc + bias [+ residual]) for output
// channels [k0, k0 + kBlock) that are < K. Each output is the same sequence of float
// operations wherever its pixel falls, so results depend neither on the batch nor on threads.
template <int kM>
void tile(const ConvShape& s, const float* x, const float* wb, const float* zeros, const Window* win,
          const ConvParams& p, int k0, int64_t m0, float* y) {
  vf acc[kM][kVecs];
  for (int i = 0; i < kM; ++i)
    for (int v = 0; v < kVecs; ++v) acc[i][v] = vf{};
  for (int r = 0; r < s.R; ++r)
    for (int t = 0; t < s.S; ++t) {
      // Padding reads a row of zeros, so the inner loop has no branch.
      const float* px[kM];
      for (int i = 0; i < kM; ++i) {
        const int h = win[i].h + r, w = win[i].w + t;
        px[i] = h < 0 || h >= s.H || w < 0 || w >= s.W ? zeros : x + ((win[i].n * s.H + h) * s.W + w) * s.C;
      }
      const float* wr = wb + size_t(r * s.S + t) * s.C * kBlock;
      for (int c = 0; c < s.C; ++c, wr += kBlock) {
        vf wv[kVecs];
#pragma GCC unroll 4
        for (int v = 0; v < kVecs; ++v) wv[v] = vec::load(wr + v * kLanes);
#pragma GCC unroll 6
        for (int i = 0; i < kM; ++i) {
          const vf xi = vec::splat(px[i][c]);
#pragma GCC unroll 4
          for (int v = 0; v < kVecs; ++v) acc[i][v] += xi * wv[v];
        }
      }
    }
  const int valid = std::min(kBlock, s.K - k0);
  for (int i = 0; i < kM; ++i)
    for (int v = 0; v < kVecs && v * kLanes < valid; ++v) {
      const int k = k0 + v * kLanes, n = std::min(kLanes, s.K - k);
      const int64_t at = (m0 + i) * s.K + k;
      // Whole vectors but in the last block of an odd K: a partial load is a memcpy of n floats.
      auto load = [&](const float* src) { return n == kLanes ? vec::load(src) : vec::load_partial(src, n, 0.f); };
      vf out = acc[i][v] + load(p.bias + k);
      if (p.residual) out += load(p.residual + at);
      if (p.relu) out = out < 0.f ? vf{} : out;  // NaN passes, as in PyTorch
      if (n == kLanes) vec::store(y + at, out);
      else vec::store_partial(y + at, out, n);
    }
}

}  // namespace

size_t conv_packed_weights_size(const ConvShape& s) {
  return size_t((s.K + kBlock - 1) / kBlock) * kBlock * s.R * s.S * s.C;
}

void pack_conv_weights(const ConvShape& s, const float* w, float* packed) {
  const size_t RSC = size_t(s.R) * s.S * s.C;
  std::fill(packed, packed + conv_packed_weights_size(s), 0.f);
  for (int k = 0; k < s.K; ++k)
    for (size_t j = 0; j < RSC; ++j) packed[(k / kBlock * RSC + j) * kBlock + k % kBlock] = w[k * RSC + j];
}

// Work items are (group of kTilesPerItem tiles, block of output channels), the block inner so
// that consecutive items reuse the same input rows.
void conv2d(const ConvShape& s, const float* x, const ConvParams& p, float* y) {
  if (p.layout != Layout::NHWC) throw std::invalid_argument("conv2d: the CPU kernel is NHWC only");
  const int P = s.P(), Q = s.Q();
  const int64_t M = int64_t(s.N) * P * Q;
  if (M <= 0 || s.K <= 0) return;
  const size_t block_floats = size_t(kBlock) * s.R * s.S * s.C;
  const float* packed = p.w_packed;
  thread_local std::vector<float> repacked;  // kept between calls, like any scratch: no page faults
  if (!packed) {
    repacked.resize(conv_packed_weights_size(s));
    pack_conv_weights(s, p.w, repacked.data());
    packed = repacked.data();
  }
  const std::vector<float> zeros(s.C, 0.f);
  const int blocks = (s.K + kBlock - 1) / kBlock;
  const int64_t tiles = M / kPixels, groups = std::max<int64_t>(1, (tiles + kTilesPerItem - 1) / kTilesPerItem);
  const double flops = 2.0 * double(M) * s.K * s.R * s.S * s.C;
  parallel_for(size_t(groups) * blocks, flops > 4e6, [&](size_t item) {
    const int kb = int(item % blocks);
    const int64_t g = int64_t(item / blocks);
    const int64_t m_begin = g * kTilesPerItem * kPixels;
    // The last group also takes the pixels after the last whole tile.
    const int64_t m_end = g == groups - 1 ? M : std::min(M, m_begin + kTilesPerItem * kPixels);
    const float* wb = packed + kb * block_floats;
    int64_t n = m_begin / (int64_t(P) * Q);
    int row = int(m_begin / Q % P), col = int(m_begin % Q);
    Window win[kPixels];
    for (int64_t m0 = m_begin; m0 < m_end;) {
      const int count = m_end - m0 >= kPixels ? kPixels : 1;
      for (int i = 0; i < count; ++i) {
        win[i] = {n, row * s.stride - s.pad, col * s.stride - s.pad};
        if (++col == Q) {
          col = 0;
          if (++row == P) row = 0, ++n;
        }
      }
      if (count == kPixels) tile<kPixels>(s, x, wb, zeros.data(), win, p, kb * kBlock, m0, y);
      else tile<1>(s, x, wb, zeros.data(), win, p, kb * kBlock, m0, y);
      m0 += count;
    }
  });
}

}  // namespace caption::cpu
