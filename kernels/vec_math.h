#pragma once
// Float vector math shared by the CPU kernels: exp for softmax, sigmoid and tanh for the LSTM
// gates. libm's expf/tanhf are opaque calls, and a scalar replacement with a clamp leaves a
// branch that GCC will not if-convert under -ftrapping-math, so these work on explicit
// vectors (GCC/Clang vector extensions) as wide as the target allows: 16 lanes with AVX-512,
// 8 with AVX2, else 4 (SSE2 or NEON, no target flags). CMake's CAPTION_NATIVE picks the build
// machine's widest. Every lane is computed by the same sequence of float operations, so a
// result does not depend on where an element falls in a vector or on how a loop is split
// between threads; sums over lanes (softmax's) do depend on the width, i.e. on the build.
#include <cmath>
#include <cstdint>
#include <cstring>
#if defined(__SSE__)
#include <immintrin.h>
#endif

namespace caption::cpu::vec {

#if defined(__AVX512F__)
inline constexpr int kLanes = 16;
#elif defined(__AVX2__)
inline constexpr int kLanes = 8;
#else
inline constexpr int kLanes = 4;
#endif

typedef float vf __attribute__((vector_size(4 * kLanes)));
typedef int32_t vi __attribute__((vector_size(4 * kLanes)));

// x - 0 is x for every float, -0 included (x + 0 would turn -0 into +0), and compiles to one
// broadcast, where a loop over the lanes became a masked move per lane.
inline vf splat(float x) { return x - vf{}; }
inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
// The first n < kLanes lanes from p, the others set to fill.
inline vf load_partial(const float* p, int n, float fill) {
  vf v = splat(fill);
  std::memcpy(&v, p, sizeof(float) * n);
  return v;
}
inline void store_partial(float* p, vf v, int n) { std::memcpy(p, &v, sizeof(float) * n); }

// The x86 instructions of the vector width: sqrt, and min/max, whose NaN rule clamp relies on.
#if defined(__AVX512F__)
#define CAPTION_VEC_X86 1
// The zero-masking forms with every lane selected: the plain ones trip GCC 12's
// -Wmaybe-uninitialized inside avx512fintrin.h (GCC bug 105593).
inline vf x86_sqrt(vf x) { return (vf)_mm512_maskz_sqrt_ps(0xffff, (__m512)x); }
inline vf x86_min(vf a, vf b) { return (vf)_mm512_maskz_min_ps(0xffff, (__m512)a, (__m512)b); }
inline vf x86_max(vf a, vf b) { return (vf)_mm512_maskz_max_ps(0xffff, (__m512)a, (__m512)b); }
#elif defined(__AVX2__)
#define CAPTION_VEC_X86 1
inline vf x86_sqrt(vf x) { return (vf)_mm256_sqrt_ps((__m256)x); }
inline vf x86_min(vf a, vf b) { return (vf)_mm256_min_ps((__m256)a, (__m256)b); }
inline vf x86_max(vf a, vf b) { return (vf)_mm256_max_ps((__m256)a, (__m256)b); }
#elif defined(__SSE__)
#define CAPTION_VEC_X86 1
inline vf x86_sqrt(vf x) { return (vf)_mm_sqrt_ps((__m128)x); }
inline vf x86_min(vf a, vf b) { return (vf)_mm_min_ps((__m128)a, (__m128)b); }
inline vf x86_max(vf a, vf b) { return (vf)_mm_max_ps((__m128)a, (__m128)b); }
#endif

// Correctly rounded, as std::sqrt.
inline vf sqrt(vf x) {
#if defined(CAPTION_VEC_X86)
  return x86_sqrt(x);
#else
  for (int i = 0; i < kLanes; ++i) x[i] = std::sqrt(x[i]);
  return x;
#endif
}

// Lanes added pairwise, halves first: a fixed order for a given width.
inline float sum_lanes(vf v) {
  float s[kLanes];
  std::memcpy(s, &v, sizeof v);
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int i = 0; i < w; ++i) s[i] += s[i + w];
  return s[0];
}

inline float max_lanes(vf v) {
  float m = v[0];
  for (int i = 1; i < kLanes; ++i) m = v[i] > m ? v[i] : m;
  return m;
}

namespace detail {
// x = n ln2 + r with n integral and |r| <= ln2/2 (x already clamped to a finite range). ln2 is
// split in two (Cody-Waite): n * 0.693359375 (9 bits) is exact for |n| < 2^15, so r is exact
// up to the rounding of its last addition.
inline vf reduce(vf x, vf& n) {
  const float round_magic = 12582912.f;  // 1.5 * 2^23: adding it rounds to an integer
  n = (x * 1.44269504f + round_magic) - round_magic;
  vf r = x - n * 0.693359375f;  // ln2 high part
  return r + n * 2.12194440e-4f;  // ln2 - high part
}

// e^r - 1 = r + r^2 P(r) on |r| <= ln2/2 with the Taylor P of degree 5 (truncation < 1e-8
// relative); this form stays accurate near 0, where tanh needs it.
inline vf expm1_reduced(vf r) {
  vf p = r * (1.f / 5040) + 1.f / 720;
  p = p * r + 1.f / 120;
  p = p * r + 1.f / 24;
  p = p * r + 1.f / 6;
  p = p * r + 0.5f;
  return r + r * r * p;
}

// x limited to [lo, hi], NaN passing through: x86's min/max return their second operand
// when either is NaN. GCC does not turn the portable form into them under -ftrapping-math.
inline vf clamp(vf x, float lo, float hi) {
  const vf l = splat(lo), h = splat(hi);
#if defined(CAPTION_VEC_X86)
  return x86_min(h, x86_max(l, x));
#else
  x = x < l ? l : x;
  return x > h ? h : x;
#endif
}

// 2^n for integral n in [-126, 127], built in the exponent field.
inline vf pow2(vi n) { return (vf)((n + 127) << 23); }
}  // namespace detail

// expm1(x) = 2^n (e^r - 1) + (2^n - 1). x is clamped to [-87, 88] so that 2^n is a normal
// float (expm1 is -1 to float precision below, and the gates never need more than 88 above);
// NaN passes through.
inline vf expm1(vf x) {
  x = detail::clamp(x, -87.f, 88.f);
  vf n;
  vf q = detail::expm1_reduced(detail::reduce(x, n));
  vf scale = detail::pow2(__builtin_convertvector(n, vi));
  return scale * q + (scale - 1.f);
}

// exp(x) = 2^n e^r, within 1 ulp of the correctly rounded result (tests/test_vec_math.cpp
// checks every 61st float of [-105, 105]): 2^n is applied as two factors 2^floor(n/2)
// 2^ceil(n/2), each a normal float, so that results in the subnormal range are rounded once
// and results past the top overflow to inf. x is clamped to [-104, 89], outside of which exp
// is 0 or inf in float; -inf gives 0, +inf gives inf and NaN passes through.
inline vf exp(vf x) {
  x = detail::clamp(x, -104.f, 89.f);
  vf n;
  vf q = detail::expm1_reduced(detail::reduce(x, n));
  vi ni = __builtin_convertvector(n, vi);
  vi n1 = ni >> 1;  // arithmetic shift: floor(n / 2)
  return ((q + 1.f) * detail::pow2(n1)) * detail::pow2(ni - n1);
}

// 1 / (1 + e^-x), written with expm1 so that one kernel serves both functions.
inline vf sigmoid(vf x) { return 1.f / (2.f + expm1(-x)); }

// tanh(x) = sign(x) (1 - e) / (1 + e) with e = exp(-2|x|), i.e. -m / (2 + m) with m = expm1(-2|x|).
inline vf tanh(vf x) {
  const vi sign = (vi)x & int32_t(0x80000000u);
  vf m = expm1((vf)((vi)x | int32_t(0x80000000u)) * 2.f);  // -2|x|
  return (vf)(((vi)(-m / (2.f + m)) & 0x7fffffff) | sign);    // |.| turns m = 0 into +0
}

// out[k] = f(in[k]) for k < n, kLanes at a time; the tail goes through a padded vector.
// out may alias in.
template <class F>
void map(const float* in, float* out, int n, F f) {
  int k = 0;
  for (; k + kLanes <= n; k += kLanes) store(out + k, f(load(in + k)));
  if (k < n) store_partial(out + k, f(load_partial(in + k, n - k, 0.f)), n - k);
}

}  // namespace caption::cpu::vec

#undef CAPTION_VEC_X86
