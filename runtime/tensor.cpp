#include "runtime/tensor.h"

#include <cstring>

namespace caption {
namespace {

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? "," : "") + std::to_string(shape[i]);
  return out + "]";
}

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24, exact in float32 (mant has at most 10 bits).
    const float mag = float(mant) * 5.9604644775390625e-8f;
    return float_of(bits_of(mag) | sign);
  }
  if (exp == 31) return float_of(sign | 0x7f800000u | (mant << 13));  // inf / nan (payload kept)
  return float_of(sign | ((exp + 112) << 23) | (mant << 13));        // rebias 15 -> 127
}

float bfloat16_to_float(uint16_t b) { return float_of(uint32_t(b) << 16); }

uint16_t float_to_bfloat16(float f) {
  const uint32_t u = bits_of(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);  // nan: keep sign, set quiet bit
  // Half an ulp minus one, plus one if the kept part is odd: ties go to even; a carry into the
  // exponent is the correct rounding up (to inf past the largest finite value).
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// After F. Giesen's float_to_half_fast3_rtne: the hardware float adder does the rounding.
uint16_t float_to_half(float f) {
  uint32_t u = bits_of(f);
  const uint32_t sign = u & 0x80000000u;
  u ^= sign;
  uint16_t out;
  if (u >= (127u + 16) << 23) {  // |f| >= 65536 (or inf/nan): everything past 65520 rounds to inf
    out = u > 0x7f800000u ? 0x7e00 : 0x7c00;
  } else if (u < 113u << 23) {  // |f| < 2^-14: half subnormal or zero
    // Adding 0.5f aligns the value so the low mantissa bits are the half's subnormal bits,
    // rounded to nearest even by the addition itself.
    const uint32_t magic = ((127u - 15) + (23 - 10) + 1) << 23;
    out = uint16_t(bits_of(float_of(u) + float_of(magic)) - magic);
  } else {
    const uint32_t mant_odd = (u >> 13) & 1u;
    u += (uint32_t(15 - 127) << 23) + 0xfffu;  // rebias and add half an ulp minus one...
    u += mant_odd;                              // ...plus one if odd: ties go to even
    out = uint16_t(u >> 13);                    // a carry past exponent 30 gives 0x7c00 = inf
  }
  return uint16_t(out | (sign >> 16));
}

}  // namespace caption
