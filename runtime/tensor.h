#pragma once
// A host tensor: row-major float32 data and its shape. Compute is always float32; files may
// store F16/BF16, which the readers widen with the conversions below.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace caption {

enum class DType { F32, F16, BF16 };
inline size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }  // bytes per element

struct Tensor {
  std::vector<int64_t> shape;  // empty shape = scalar (one element)
  std::vector<float> data;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// "[2,3]": a shape in error messages.
std::string shape_str(const std::vector<int64_t>& shape);

// IEEE binary16 <-> binary32. Widening is exact (subnormals, inf, nan included); narrowing
// rounds to nearest even, overflows to inf, keeps subnormals and turns any nan into a quiet nan.
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
// bfloat16 is the top half of a binary32, so widening is a shift; narrowing rounds to nearest
// even (as CUDA's __float2bfloat16_rn does) and turns any nan into a quiet nan.
float bfloat16_to_float(uint16_t b);
uint16_t float_to_bfloat16(float f);

}  // namespace caption
