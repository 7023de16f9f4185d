#include "kernels/dense.h"

#include <algorithm>

#include "tests/test_util.h"

namespace caption {
namespace {

using test::all_close;
using test::random_vector;

struct Params {
  std::vector<float> x, W, b;
};

// y = act(x W^T + b) in double.
std::vector<double> naive_pre(const Params& p, int M, int N, int K) {
  std::vector<double> pre(size_t(M) * N);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double s = p.b[n];
      for (int k = 0; k < K; ++k) s += double(p.x[m * K + k]) * p.W[n * K + k];
      pre[size_t(m) * N + n] = s;
    }
  return pre;
}

// Inputs whose pre-activations all stay `margin` clear of the ReLU kink, so that a finite
// difference step never crosses it.
Params params_clear_of_kink(int M, int N, int K, double margin) {
  for (uint32_t seed = 1;; seed += 3) {
    Params p{random_vector(M * K, seed), random_vector(N * K, seed + 1), random_vector(N, seed + 2)};
    auto pre = naive_pre(p, M, N, K);
    if (std::all_of(pre.begin(), pre.end(), [&](double v) { return std::fabs(v) > margin; })) return p;
  }
}

TEST(Dense, ForwardMatchesNaive) {
  const int M = 4, N = 9, K = 6;
  for (Activation act : {Activation::None, Activation::ReLU}) {
    Params p{random_vector(M * K, 1), random_vector(N * K, 2), random_vector(N, 3)};
    auto pre = naive_pre(p, M, N, K);
    std::vector<float> ref(pre.size()), y(pre.size());
    for (size_t i = 0; i < pre.size(); ++i) ref[i] = float(act == Activation::ReLU && pre[i] < 0 ? 0 : pre[i]);
    cpu::dense_forward(p.x.data(), p.W.data(), p.b.data(), y.data(), M, N, K, act);
    EXPECT_TRUE(all_close(y, ref, 1e-5f, 1e-6f));
  }
}

// loss = sum(y * w): dx, dW and db from backward against central differences in every
// parameter; dy must come back as the pre-activation gradient.
TEST(Dense, BackwardMatchesFiniteDifferences) {
  const int M = 5, N = 7, K = 6;
  for (Activation act : {Activation::None, Activation::ReLU}) {
    Params p = params_clear_of_kink(M, N, K, 0.02);
    auto w = random_vector(M * N, 99);
    std::vector<float> y(M * N), dy = w, dx(M * K), dW(N * K), db(N);
    cpu::dense_forward(p.x.data(), p.W.data(), p.b.data(), y.data(), M, N, K, act);
    cpu::dense_backward(p.x.data(), p.W.data(), y.data(), dy.data(), dx.data(), dW.data(), db.data(), M, N, K, act);
    for (int i = 0; i < M * N; ++i) EXPECT_EQ(dy[i], act == Activation::ReLU && !(y[i] > 0) ? 0.f : w[i]);

    std::vector<float> out(M * N);
    auto loss = [&] {
      cpu::dense_forward(p.x.data(), p.W.data(), p.b.data(), out.data(), M, N, K, act);
      double s = 0;
      for (int i = 0; i < M * N; ++i) s += double(out[i]) * w[i];
      return s;
    };
    auto check = [&](std::vector<float>& param, const std::vector<float>& grad, const char* name) {
      for (size_t i = 0; i < param.size(); ++i) {
        const float v0 = param[i], eps = 1e-3f;
        param[i] = v0 + eps;
        const double up = loss(), vu = param[i];
        param[i] = v0 - eps;
        const double dn = loss(), vd = param[i];
        param[i] = v0;
        EXPECT_NEAR(grad[i], (up - dn) / (vu - vd), 2e-3 + 1e-2 * std::fabs(grad[i])) << name << "[" << i << "]";
      }
    };
    check(p.x, dx, "dx");
    check(p.W, dW, "dW");
    check(p.b, db, "db");

    // Without dx the other gradients are unchanged.
    std::vector<float> dy2 = w, dW2(N * K), db2(N);
    cpu::dense_backward(p.x.data(), p.W.data(), y.data(), dy2.data(), nullptr, dW2.data(), db2.data(), M, N, K, act);
    EXPECT_EQ(dW2, dW);
    EXPECT_EQ(db2, db);
  }
}

// Runs forward and backward on both backends; x, W, b, y and the gradients sit `shift`
// floats into their buffers, to exercise pointers that are not 16-byte aligned.
void expect_cuda_matches_cpu(Context& gpu, int M, int N, int K, Activation act, int shift) {
  SCOPED_TRACE(testing::Message() << "M=" << M << " N=" << N << " K=" << K << " relu=" << (act == Activation::ReLU)
                                  << " shift=" << shift);
  Params p{random_vector(size_t(M) * K, 11), random_vector(size_t(N) * K, 12), random_vector(N, 13)};
  auto g = random_vector(size_t(M) * N, 14);
  std::vector<float> y(size_t(M) * N), dy = g, dx(size_t(M) * K), dW(size_t(N) * K), db(N);
  cpu::dense_forward(p.x.data(), p.W.data(), p.b.data(), y.data(), M, N, K, act);
  cpu::dense_backward(p.x.data(), p.W.data(), y.data(), dy.data(), dx.data(), dW.data(), db.data(), M, N, K, act);

  auto padded = [&](const std::vector<float>& v) {
    std::vector<float> out(shift, 0.f);
    out.insert(out.end(), v.begin(), v.end());
    return test::to_device(gpu, out);
  };
  auto back = [&](const PoolBuffer<float>& buf) {
    auto h = test::to_host(gpu, buf);
    return std::vector<float>(h.begin() + shift, h.end());
  };
  auto garbage = [&](size_t n) { return padded(std::vector<float>(n, 5.f)); };  // outputs must be overwritten
  auto dX = padded(p.x), dWt = padded(p.W), dB = padded(p.b), dY = garbage(y.size());
  auto dG = padded(g), dDX = garbage(dx.size()), dDW = garbage(dW.size()), dDB = garbage(db.size());
  const Exec ex = gpu.exec();
  dense_forward(ex, dX.data() + shift, dWt.data() + shift, dB.data() + shift, dY.data() + shift, M, N, K, act);
  auto gy = back(dY);
  EXPECT_TRUE(all_close(gy, y, 1e-4f, 1e-4f));
  // Backward from the CPU's y, so that both apply the same ReLU mask.
  gpu.upload(dY.data() + shift, y.data(), y.size() * sizeof(float));
  dense_backward(ex, dX.data() + shift, dWt.data() + shift, dY.data() + shift, dG.data() + shift, dDX.data() + shift,
                 dDW.data() + shift, dDB.data() + shift, M, N, K, act);
  EXPECT_TRUE(all_close(back(dG), dy, 0.f, 0.f));  // the mask is exact
  EXPECT_TRUE(all_close(back(dDX), dx, 1e-4f, 1e-4f));
  EXPECT_TRUE(all_close(back(dDW), dW, 1e-4f, 1e-4f));
  EXPECT_TRUE(all_close(back(dDB), db, 1e-4f, 1e-4f));

  // Deterministic: a second backward (dy already masked) gives the same bits for db.
  auto db_first = back(dDB);
  dense_backward(ex, dX.data() + shift, dWt.data() + shift, dY.data() + shift, dG.data() + shift, nullptr,
                 dDW.data() + shift, dDB.data() + shift, M, N, K, act);
  EXPECT_EQ(back(dDB), db_first);
}

TEST(Dense, CudaMatchesCpu) {
  REQUIRE_CUDA();
  Context gpu(Device::CUDA);
  struct Shape {
    int M, N, K;
  };
  for (Shape s : {Shape{1, 1, 1}, Shape{1, 33, 7}, Shape{37, 1000, 65}, Shape{300, 31, 257}, Shape{1030, 256, 2048}})
    for (Activation act : {Activation::None, Activation::ReLU}) expect_cuda_matches_cpu(gpu, s.M, s.N, s.K, act, 0);
}

TEST(Dense, CudaUnalignedPointers) {
  REQUIRE_CUDA();
  Context gpu(Device::CUDA);
  for (Activation act : {Activation::None, Activation::ReLU}) expect_cuda_matches_cpu(gpu, 67, 129, 45, act, 1);
}

}  // namespace
}  // namespace caption
