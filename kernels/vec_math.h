#pragma once
// 4-lane float math shared by the CPU kernels: exp for softmax, sigmoid and tanh for the LSTM
// gates. libm's expf/tanhf are opaque calls, and a scalar replacement with a clamp leaves a
// branch that GCC will not if-convert under -ftrapping-math, so these work on explicit 4-lane
// vectors (GCC/Clang vector extensions: SSE2 or NEON without any target flags). Every lane is
// computed by the same sequence of float operations, so results do not depend on where an
// element falls in a vector or on how a loop is split between threads.
#include <cmath>
#include <cstdint>
#include <cstring>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

namespace caption::cpu::vec {

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

inline v4f load(const float* p) {
  v4f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, v4f v) { std::memcpy(p, &v, sizeof v); }
// The first n < 4 lanes from p, the others set to fill.
inline v4f load_partial(const float* p, int n, float fill) {
  v4f v = {fill, fill, fill, fill};
  std::memcpy(&v, p, sizeof(float) * n);
  return v;
}
inline void store_partial(float* p, v4f v, int n) { std::memcpy(p, &v, sizeof(float) * n); }

// Correctly rounded, as std::sqrt.
inline v4f sqrt(v4f x) {
#if defined(__SSE__)
  return (v4f)_mm_sqrt_ps((__m128)x);
#else
  return v4f{std::sqrt(x[0]), std::sqrt(x[1]), std::sqrt(x[2]), std::sqrt(x[3])};
#endif
}

inline float sum_lanes(v4f v) { return (v[0] + v[1]) + (v[2] + v[3]); }

namespace detail {
// x = n ln2 + r with n integral and |r| <= ln2/2 (x already clamped to a finite range). ln2 is
// split in two (Cody-Waite): n * 0.693359375 (9 bits) is exact for |n| < 2^15, so r is exact
// up to the rounding of its last addition.
inline v4f reduce(v4f x, v4f& n) {
  const float round_magic = 12582912.f;  // 1.5 * 2^23: adding it rounds to an integer
  n = (x * 1.44269504f + round_magic) - round_magic;
  v4f r = x - n * 0.693359375f;  // ln2 high part
  return r + n * 2.12194440e-4f;  // ln2 - high part
}

// e^r - 1 = r + r^2 P(r) on |r| <= ln2/2 with the Taylor P of degree 5 (truncation < 1e-8
// relative); this form stays accurate near 0, where tanh needs it.
inline v4f expm1_reduced(v4f r) {
  v4f p = r * (1.f / 5040) + 1.f / 720;
  p = p * r + 1.f / 120;
  p = p * r + 1.f / 24;
  p = p * r + 1.f / 6;
  p = p * r + 0.5f;
  return r + r * r * p;
}

// x limited to [lo, hi], NaN passing through: SSE's maxps/minps return their second operand
// when either is NaN. GCC does not turn the portable form into them under -ftrapping-math.
inline v4f clamp(v4f x, float lo, float hi) {
  const v4f l = {lo, lo, lo, lo}, h = {hi, hi, hi, hi};
#if defined(__SSE__)
  return (v4f)_mm_min_ps((__m128)h, _mm_max_ps((__m128)l, (__m128)x));
#else
  x = x < l ? l : x;
  return x > h ? h : x;
#endif
}

// 2^n for integral n in [-126, 127], built in the exponent field.
inline v4f pow2(v4i n) { return (v4f)((n + 127) << 23); }
}  // namespace detail

// expm1(x) = 2^n (e^r - 1) + (2^n - 1). x is clamped to [-87, 88] so that 2^n is a normal
// float (expm1 is -1 to float precision below, and the gates never need more than 88 above);
// NaN passes through.
inline v4f expm1(v4f x) {
  x = detail::clamp(x, -87.f, 88.f);
  v4f n;
  v4f q = detail::expm1_reduced(detail::reduce(x, n));
  v4f scale = detail::pow2(__builtin_convertvector(n, v4i));
  return scale * q + (scale - 1.f);
}

// exp(x) = 2^n e^r, within 1 ulp of the correctly rounded result (checked on every 13th float
// of [-105, 105]): 2^n is applied as two factors 2^floor(n/2) 2^ceil(n/2), each a normal
// float, so that results in the subnormal range are rounded once and results past the top
// overflow to inf. x is clamped to [-104, 89], outside
// of which exp is 0 or inf in float; -inf gives 0, +inf gives inf and NaN passes through.
inline v4f exp(v4f x) {
  x = detail::clamp(x, -104.f, 89.f);
  v4f n;
  v4f q = detail::expm1_reduced(detail::reduce(x, n));
  v4i ni = __builtin_convertvector(n, v4i);
  v4i n1 = ni >> 1;  // arithmetic shift: floor(n / 2)
  return ((q + 1.f) * detail::pow2(n1)) * detail::pow2(ni - n1);
}

// 1 / (1 + e^-x), written with expm1 so that one kernel serves both functions.
inline v4f sigmoid(v4f x) { return 1.f / (2.f + expm1(-x)); }

// tanh(x) = sign(x) (1 - e) / (1 + e) with e = exp(-2|x|), i.e. -m / (2 + m) with m = expm1(-2|x|).
inline v4f tanh(v4f x) {
  const v4i sign = (v4i)x & int32_t(0x80000000u);
  v4f m = expm1((v4f)((v4i)x | int32_t(0x80000000u)) * 2.f);  // -2|x|
  return (v4f)(((v4i)(-m / (2.f + m)) & 0x7fffffff) | sign);    // |.| turns m = 0 into +0
}

// out[k] = f(in[k]) for k < n, four lanes at a time; the tail goes through a padded vector.
// out may alias in.
template <class F>
void map(const float* in, float* out, int n, F f) {
  int k = 0;
  for (; k + 4 <= n; k += 4) store(out + k, f(load(in + k)));
  if (k < n) store_partial(out + k, f(load_partial(in + k, n - k, 0.f)), n - k);
}

}  // namespace caption::cpu::vec
