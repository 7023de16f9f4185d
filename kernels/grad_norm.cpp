#include "kernels/grad_norm.h"

#include <cmath>

namespace caption::cpu {

float global_norm(const float* x, size_t n) {
  double sum = 0;  // double: tens of millions of squares summed in order stay exact enough
  for (size_t i = 0; i < n; ++i) sum += double(x[i]) * x[i];
  return float(std::sqrt(sum));
}

void scale(float* x, size_t n, float s) {
  for (size_t i = 0; i < n; ++i) x[i] *= s;
}

}  // namespace caption::cpu
