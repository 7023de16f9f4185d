#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <type_traits>
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

// acc[i] += sum over c < C of rows[i][c] * w[c] (w: C rows of a kBlock-channel weight block):
// the register tile's inner loop, for the direct kernel and for Winograd's products alike.
template <int kM>
inline void accumulate(const float* const* rows, const float* w, int C, vf (&acc)[kM][kVecs]) {
  for (int c = 0; c < C; ++c, w += kBlock) {
    vf wv[kVecs];
#pragma GCC unroll 4
    for (int v = 0; v < kVecs; ++v) wv[v] = vec::load(w + v * kLanes);
#pragma GCC unroll 6
    for (int i = 0; i < kM; ++i) {
      const vf xi = vec::splat(rows[i][c]);
#pragma GCC unroll 4
      for (int v = 0; v < kVecs; ++v) acc[i][v] += xi * wv[v];
    }
  }
}

// act(value + bias [+ residual]) for output channels [k, k + n) of output element `at`.
inline void store_output(const ConvParams& p, vf value, int k, int n, int64_t at, float* y) {
  // Whole vectors but in the last block of an odd K: a partial load is a memcpy of n floats.
  auto load = [&](const float* src) { return n == kLanes ? vec::load(src) : vec::load_partial(src, n, 0.f); };
  vf out = value + load(p.bias + k);
  if (p.residual) out += load(p.residual + at);
  if (p.relu) out = out < 0.f ? vf{} : out;  // NaN passes, as in PyTorch
  if (n == kLanes) vec::store(y + at, out);
  else vec::store_partial(y + at, out, n);
}

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
      accumulate<kM>(px, wb + size_t(r * s.S + t) * s.C * kBlock, s.C, acc);
    }
  for (int i = 0; i < kM; ++i)
    for (int v = 0; v < kVecs && k0 + v * kLanes < s.K; ++v) {
      const int k = k0 + v * kLanes;
      store_output(p, acc[i][v], k, std::min(kLanes, s.K - k), (m0 + i) * s.K + k, y);
    }
}

// Winograd F(2x2, 3x3) (Lavin & Gray, 2016) for 3x3 stride-1 convolutions with padding 1,
// ResNet's commonest: a 2x2 block of outputs is A^T [U . V] A, with U = G g G^T the 4x4 transform
// of a 3x3 filter (packed once) and V = B^T d B that of the 4x4 input patch. Per input and output
// channel that is 16 multiplies where the direct kernel does 36; the 16 elementwise products,
// summed over input channels, are 16 small GEMMs on the direct kernel's register tile.
bool winograd(const ConvShape& s) { return s.R == 3 && s.S == 3 && s.stride == 1 && s.pad == 1; }
constexpr int kWinoTiles = 24;  // 2x2 output tiles per work item

// U = G g G^T for one (k, c), g 3x3 row-major; G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1].
void filter_transform(const double g[9], double u[16]) {
  const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) {
      double sum = 0;
      for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b) sum += G[i][a] * g[a * 3 + b] * G[j][b];
      u[i * 4 + j] = sum;
    }
}

// V = B^T d B for kLanes channels, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
inline void input_transform(const vf d[4][4], vf v[4][4]) {
  vf t[4][4];
  for (int j = 0; j < 4; ++j) {
    t[0][j] = d[0][j] - d[2][j];
    t[1][j] = d[1][j] + d[2][j];
    t[2][j] = d[2][j] - d[1][j];
    t[3][j] = d[1][j] - d[3][j];
  }
  for (int i = 0; i < 4; ++i) {
    v[i][0] = t[i][0] - t[i][2];
    v[i][1] = t[i][1] + t[i][2];
    v[i][2] = t[i][2] - t[i][1];
    v[i][3] = t[i][1] - t[i][3];
  }
}

// Y = A^T m A, A^T = [1 1 1 0; 0 1 -1 -1].
inline void output_transform(const vf m[4][4], vf y[2][2]) {
  vf t[2][4];
  for (int j = 0; j < 4; ++j) {
    t[0][j] = m[0][j] + m[1][j] + m[2][j];
    t[1][j] = m[1][j] - m[2][j] - m[3][j];
  }
  for (int a = 0; a < 2; ++a) {
    y[a][0] = t[a][0] + t[a][1] + t[a][2];
    y[a][1] = t[a][1] - t[a][2] - t[a][3];
  }
}

// Output tile index -> image, and the tile's top-left output pixel.
struct TileAt {
  int64_t n;
  int p, q;
};
TileAt tile_at(int64_t t, int TP, int TQ) {
  return {t / (int64_t(TP) * TQ), int(t / TQ % TP) * 2, int(t % TQ) * 2};
}

// One work item: tiles [t0, t0 + T) for output channels [kb * kBlock, +kBlock). Each output
// is the same float operations wherever its tile falls, as in the direct kernel.
void winograd_item(const ConvShape& s, const float* x, const float* packed, const ConvParams& p, int kb, int64_t t0,
                   int T, float* y) {
  const int C = s.C, P = s.P(), Q = s.Q(), TP = (P + 1) / 2, TQ = (Q + 1) / 2;
  thread_local std::vector<float> V, M;  // [16][kWinoTiles][C] and [16][kWinoTiles][kBlock]
  V.resize(size_t(16) * kWinoTiles * C);
  M.resize(size_t(16) * kWinoTiles * kBlock);
  for (int t = 0; t < T; ++t) {
    const TileAt at = tile_at(t0 + t, TP, TQ);
    for (int c = 0; c < C; c += kLanes) {
      const int n = std::min(kLanes, C - c);
      vf d[4][4], v[4][4];
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) {
          const int h = at.p - 1 + i, w = at.q - 1 + j;
          const float* src = x + ((at.n * s.H + h) * s.W + w) * C + c;
          d[i][j] = h < 0 || h >= s.H || w < 0 || w >= s.W ? vf{}
                    : n == kLanes                          ? vec::load(src)
                                                           : vec::load_partial(src, n, 0.f);
        }
      input_transform(d, v);
      for (int e = 0; e < 16; ++e) {
        float* dst = &V[(size_t(e) * kWinoTiles + t) * C + c];
        if (n == kLanes) vec::store(dst, v[e / 4][e % 4]);
        else vec::store_partial(dst, v[e / 4][e % 4], n);
      }
    }
  }
  for (int e = 0; e < 16; ++e) {
    const float* u = packed + (size_t(kb) * 16 + e) * C * kBlock;
    for (int t = 0; t < T;) {
      const int rows = T - t >= kPixels ? kPixels : 1;
      const float* src[kPixels];
      for (int i = 0; i < rows; ++i) src[i] = &V[(size_t(e) * kWinoTiles + t + i) * C];
      float* dst = &M[(size_t(e) * kWinoTiles + t) * kBlock];
      auto run = [&](auto rows_const) {
        constexpr int kM = decltype(rows_const)::value;
        vf acc[kM][kVecs];
        for (int i = 0; i < kM; ++i)
          for (int v = 0; v < kVecs; ++v) acc[i][v] = vf{};
        accumulate<kM>(src, u, C, acc);
        for (int i = 0; i < kM; ++i)
          for (int v = 0; v < kVecs; ++v) vec::store(dst + i * kBlock + v * kLanes, acc[i][v]);
      };
      if (rows == kPixels) run(std::integral_constant<int, kPixels>{});
      else run(std::integral_constant<int, 1>{});
      t += rows;
    }
  }
  const int k0 = kb * kBlock;
  for (int t = 0; t < T; ++t) {
    const TileAt at = tile_at(t0 + t, TP, TQ);
    for (int v = 0; v < kVecs && k0 + v * kLanes < s.K; ++v) {
      const int k = k0 + v * kLanes, n = std::min(kLanes, s.K - k);
      vf m[4][4], out[2][2];
      for (int e = 0; e < 16; ++e) m[e / 4][e % 4] = vec::load(&M[(size_t(e) * kWinoTiles + t) * kBlock + v * kLanes]);
      output_transform(m, out);
      for (int a = 0; a < 2; ++a)
        for (int b = 0; b < 2; ++b)
          if (at.p + a < P && at.q + b < Q)
            store_output(p, out[a][b], k, n, ((at.n * P + at.p + a) * Q + at.q + b) * s.K + k, y);
    }
  }
}

}  // namespace

size_t conv_packed_weights_size(const ConvShape& s) {
  return size_t((s.K + kBlock - 1) / kBlock) * kBlock * (winograd(s) ? 16 : s.R * s.S) * s.C;
}

void pack_conv_weights(const ConvShape& s, const float* w, float* packed) {
  const size_t RSC = size_t(s.R) * s.S * s.C;
  std::fill(packed, packed + conv_packed_weights_size(s), 0.f);
  if (!winograd(s)) {
    for (int k = 0; k < s.K; ++k)
      for (size_t j = 0; j < RSC; ++j) packed[(k / kBlock * RSC + j) * kBlock + k % kBlock] = w[k * RSC + j];
    return;
  }
  // [K blocks][16 transform positions][C][kBlock].
  for (int k = 0; k < s.K; ++k)
    for (int c = 0; c < s.C; ++c) {
      double g[9], u[16];
      for (int rs = 0; rs < 9; ++rs) g[rs] = w[k * RSC + size_t(rs) * s.C + c];
      filter_transform(g, u);
      for (int e = 0; e < 16; ++e)
        packed[((size_t(k / kBlock) * 16 + e) * s.C + c) * kBlock + k % kBlock] = float(u[e]);
    }
}

// Work items are (group of kTilesPerItem tiles, block of output channels), the block inner so
// that consecutive items reuse the same input rows.
void conv2d(const ConvShape& s, const float* x, const ConvParams& p, float* y) {
  if (p.layout != Layout::NHWC) throw std::invalid_argument("conv2d: the CPU kernel is NHWC only");
  const int P = s.P(), Q = s.Q();
  const int64_t M = int64_t(s.N) * P * Q;
  if (M <= 0 || s.K <= 0) return;
  const float* packed = p.w_packed;
  thread_local std::vector<float> repacked;  // kept between calls, like any scratch: no page faults
  if (!packed) {
    repacked.resize(conv_packed_weights_size(s));
    pack_conv_weights(s, p.w, repacked.data());
    packed = repacked.data();
  }
  const int blocks = (s.K + kBlock - 1) / kBlock;
  if (winograd(s)) {
    const int64_t tiles = int64_t(s.N) * ((P + 1) / 2) * ((Q + 1) / 2);
    const int64_t groups = (tiles + kWinoTiles - 1) / kWinoTiles;
    const double flops = 2.0 * double(tiles) * 16 * s.K * s.C;
    parallel_for(size_t(groups) * blocks, flops > 4e6, [&](size_t item) {
      const int64_t t0 = int64_t(item / blocks) * kWinoTiles;
      winograd_item(s, x, packed, p, int(item % blocks), t0, int(std::min<int64_t>(kWinoTiles, tiles - t0)), y);
    });
    return;
  }
  const std::vector<float> zeros(s.C, 0.f);
  const int64_t tiles = M / kPixels, groups = std::max<int64_t>(1, (tiles + kTilesPerItem - 1) / kTilesPerItem);
  const double flops = 2.0 * double(M) * s.K * s.R * s.S * s.C;
  parallel_for(size_t(groups) * blocks, flops > 4e6, [&](size_t item) {
    const int kb = int(item % blocks);
    const int64_t g = int64_t(item / blocks);
    const int64_t m_begin = g * kTilesPerItem * kPixels;
    // The last group also takes the pixels after the last whole tile.
    const int64_t m_end = g == groups - 1 ? M : std::min(M, m_begin + kTilesPerItem * kPixels);
    const float* wb = packed + size_t(kb) * kBlock * s.R * s.S * s.C;
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
