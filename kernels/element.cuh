#pragma once
// Device-side element access shared by the kernels that run in FP32 or bfloat16 storage: values
// are loaded as float (float4 for 4-wide FP32 access), computed in FP32, and stored back, bfloat16
// rounded to nearest even.
#include <cuda_bf16.h>

#include <cstdint>

namespace caption::cuda {

__device__ inline float widen(float v) { return v; }
__device__ inline float4 widen(float4 v) { return v; }
__device__ inline float widen(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ inline void store(float& d, float v) { d = v; }
__device__ inline void store(float4& d, float4 v) { d = v; }
__device__ inline void store(__nv_bfloat16& d, float v) { d = __float2bfloat16_rn(v); }

// The host API passes bfloat16 as its bits (uint16_t, runtime/tensor.h); kernels take these.
inline __nv_bfloat16* bf16(uint16_t* p) { return reinterpret_cast<__nv_bfloat16*>(p); }
inline const __nv_bfloat16* bf16(const uint16_t* p) { return reinterpret_cast<const __nv_bfloat16*>(p); }

}  // namespace caption::cuda
