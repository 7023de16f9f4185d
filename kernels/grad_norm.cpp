#include "kernels/grad_norm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/parallel.h"

namespace caption::cpu {

namespace {

typedef float v2f __attribute__((vector_size(8)));
typedef double v2d __attribute__((vector_size(16)));

// The sum of squares is cut into fixed chunks whose partial sums are added in chunk order, and
// each chunk is summed in a fixed lane order: the result depends on n only, never on the
// number of threads. Squares of floats are exact in double, and the chunks keep each partial
// sum short, so the double sums stay accurate for tens of millions of elements.
constexpr size_t kChunk = 16384;
// Below this many elements (about 70 us) one thread does the whole call: waking a worker costs
// tens of microseconds. scale is one multiply per element at the speed of the caches, so it
// gains from a second thread only on much larger buffers.
constexpr size_t kParallelMin = size_t(1) << 18;
constexpr size_t kScaleParallelMin = size_t(1) << 22;

inline v2d square_pair(const float* x) {
  v2f f;
  std::memcpy(&f, x, sizeof f);
  v2d d = __builtin_convertvector(f, v2d);
  return d * d;
}

double sum_squares(const float* x, size_t n) {
  v2d acc[4] = {};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 4; ++j) acc[j] += square_pair(x + i + 2 * j);
  }
  v2d s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  double sum = s[0] + s[1];
  for (; i < n; ++i) sum += double(x[i]) * x[i];
  return sum;
}

}  // namespace

float global_norm(const float* x, size_t n) {
  const size_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(chunks);
  parallel_for(chunks, n >= kParallelMin,
               [&](size_t k) { partial[k] = sum_squares(x + k * kChunk, std::min(kChunk, n - k * kChunk)); });
  double sum = 0;
  for (double p : partial) sum += p;
  return float(std::sqrt(sum));
}

void scale(float* x, size_t n, float s) {
  const size_t chunks = (n + kChunk - 1) / kChunk;
  parallel_for(chunks, n >= kScaleParallelMin, [=](size_t k) {
    float* c = x + k * kChunk;
    const size_t m = std::min(kChunk, n - k * kChunk);
    for (size_t i = 0; i < m; ++i) c[i] *= s;
  });
}

}  // namespace caption::cpu
