#pragma once
// Shared helpers for the op tests: skipping without a device, moving data to a backend,
// random inputs, and comparisons that report the worst element.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/layout.h"
#include "runtime/context.h"
#include "runtime/tensor.h"

namespace caption::test {

#define REQUIRE_CUDA()                                                     \
  do {                                                                     \
    if (!::caption::cuda_available()) GTEST_SKIP() << "no CUDA device";    \
  } while (0)

inline std::vector<float> random_vector(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// 4-D tensors between NHWC and NCHW order (also weights, OHWI <-> OIHW): element (n,h,w,c) moves
// from one order to the other.
template <class T>
std::vector<T> reorder_4d(const std::vector<T>& v, int N, int H, int W, int C, bool to_nchw) {
  const Layout from = to_nchw ? Layout::NHWC : Layout::NCHW, to = to_nchw ? Layout::NCHW : Layout::NHWC;
  std::vector<T> out(v.size());
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int h = 0; h < H; ++h)
        for (int w = 0; w < W; ++w)
          out[layout_offset(to, n, c, h, w, C, H, W)] = v[layout_offset(from, n, c, h, w, C, H, W)];
  return out;
}
template <class T>
std::vector<T> nchw_to_nhwc(const std::vector<T>& v, int N, int C, int H, int W) {
  return reorder_4d(v, N, H, W, C, false);
}
template <class T>
std::vector<T> nhwc_to_nchw(const std::vector<T>& v, int N, int H, int W, int C) {
  return reorder_4d(v, N, H, W, C, true);
}

// Rounded to bfloat16 (bits), and those bits widened back.
inline std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = float_to_bfloat16(v[i]);
  return out;
}
inline std::vector<float> from_bf16(const std::vector<uint16_t>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = bfloat16_to_float(v[i]);
  return out;
}

// A float's bit pattern and back (signed zeros, NaN payloads and exact ulps in comparisons).
inline uint32_t float_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
inline float bits_float(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

template <class T>
PoolBuffer<T> to_device(Context& ctx, const std::vector<T>& host) {
  PoolBuffer<T> buf(ctx.pool(), host.size(), ctx.exec().stream);
  if (!host.empty()) ctx.upload(buf.data(), host.data(), host.size() * sizeof(T));
  return buf;
}

template <class T>
std::vector<T> to_host(Context& ctx, const PoolBuffer<T>& buf) {
  std::vector<T> host(buf.size());
  if (!host.empty()) ctx.download(host.data(), buf.data(), host.size() * sizeof(T));
  return host;
}

// Passes when |a-b| <= atol + rtol*|b| everywhere; reports the worst index otherwise.
inline ::testing::AssertionResult all_close(const std::vector<float>& a, const std::vector<float>& b,
                                            float rtol, float atol) {
  if (a.size() != b.size())
    return ::testing::AssertionFailure() << "size " << a.size() << " vs " << b.size();
  size_t worst = 0;
  double worst_excess = -1;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i]))
      return ::testing::AssertionFailure() << "non-finite at " << i << ": " << a[i] << " vs " << b[i];
    double excess = std::fabs(double(a[i]) - b[i]) - (atol + rtol * std::fabs(double(b[i])));
    if (excess > worst_excess) worst_excess = excess, worst = i;
  }
  if (worst_excess > 0)
    return ::testing::AssertionFailure() << "at " << worst << ": " << a[worst] << " vs " << b[worst];
  return ::testing::AssertionSuccess();
}

}  // namespace caption::test
