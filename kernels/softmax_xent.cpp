#include "kernels/softmax_xent.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "kernels/parallel.h"
#include "kernels/vec_math.h"

namespace caption::cpu {

namespace {

using vec::kLanes;
using vec::vf;

// Rows go to threads in groups of about kItemLogits logits, each row done whole by one thread
// in a fixed order, so results do not depend on the thread count. Below kParallelMin logits
// (about 80 us) one thread does it all: waking a worker costs tens of microseconds.
constexpr size_t kItemLogits = 16384;
constexpr size_t kParallelMin = size_t(1) << 16;

// f(n) for every row, parallel over groups of rows.
template <class F>
void for_rows(int N, int V, F f) {
  parallel_rows(size_t(N), size_t(V), kItemLogits, kParallelMin, f);
}

inline vf vmax(vf a, vf b) { return a > b ? a : b; }

float row_max(const float* x, int V) {
  vf m0 = vec::splat(x[0]), m1 = m0;
  int v = 0;
  for (; v + 2 * kLanes <= V; v += 2 * kLanes) {
    m0 = vmax(m0, vec::load(x + v));
    m1 = vmax(m1, vec::load(x + v + kLanes));
  }
  float mx = vec::max_lanes(vmax(m0, m1));
  for (; v < V; ++v) mx = std::max(mx, x[v]);
  return mx;
}

// Max-subtracted so that large logits cannot overflow exp. The exponentials are summed in
// float lanes over blocks of at most 256 logits and the block sums in double, so that the sum
// stays accurate for vocabularies of ten thousand words at the cost of float vector adds.
// A NaN anywhere in the row, or an infinite max, makes the result NaN.
float row_logsumexp(const float* x, int V) {
  const float mx = row_max(x, V);
  const float neg_inf = -std::numeric_limits<float>::infinity();  // padding lanes: exp gives 0
  double sum = 0;
  for (int v = 0; v < V;) {
    const int end = std::min(V, v + 256);
    vf s0 = {}, s1 = {};
    for (; v + 2 * kLanes <= end; v += 2 * kLanes) {
      s0 += vec::exp(vec::load(x + v) - mx);
      s1 += vec::exp(vec::load(x + v + kLanes) - mx);
    }
    for (; v < end; v += kLanes) s0 += vec::exp(vec::load_partial(x + v, std::min(kLanes, end - v), neg_inf) - mx);
    sum += double(vec::sum_lanes(s0 + s1));
  }
  return float(double(mx) + std::log(sum));
}

// Checked before the parallel loop, whose items must not throw.
void check_targets(const int32_t* targets, int N, int V) {
  for (int n = 0; n < N; ++n)
    if (targets[n] < 0 || targets[n] >= V) throw std::out_of_range("softmax_xent: target outside [0, V)");
}

}  // namespace

void softmax_xent_forward(const float* logits, const int32_t* targets, int N, int V, float* loss, float* lse) {
  check_targets(targets, N, V);
  for_rows(N, V, [=](size_t n) {
    const float* x = logits + n * V;
    const int32_t t = targets[n];
    lse[n] = row_logsumexp(x, V);
    loss[n] = t == 0 ? 0.f : lse[n] - x[t];
  });
}

void softmax_xent_backward(const float* logits, const int32_t* targets, const float* lse, int N, int V,
                           float scale, float* dlogits) {
  check_targets(targets, N, V);
  for_rows(N, V, [=](size_t n) {
    const float* x = logits + n * V;
    float* d = dlogits + n * V;
    const int32_t t = targets[n];
    if (t == 0) {
      std::fill_n(d, V, 0.f);
      return;
    }
    // x[t] is read before the loop: with dlogits == logits the loop overwrites it. Each
    // vector is read before it is written, so the loop itself is safe in place.
    const float l = lse[n], xt = x[t];
    int v = 0;
    for (; v + kLanes <= V; v += kLanes) vec::store(d + v, scale * vec::exp(vec::load(x + v) - l));
    if (v < V) vec::store_partial(d + v, scale * vec::exp(vec::load_partial(x + v, V - v, 0.f) - l), V - v);
    const float pt = vec::exp(vec::splat(xt) - l)[0];  // the same exp as the loop's
    d[t] = scale * (pt - 1.f);
  });
}

void logsumexp_rows(const float* logits, int N, int V, float* lse) {
  for_rows(N, V, [=](size_t n) { lse[n] = row_logsumexp(logits + n * V, V); });
}

}  // namespace caption::cpu
