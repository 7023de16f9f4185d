#include "kernels/broadcast_add.h"

#include <cstring>

#include "tests/test_util.h"

namespace caption {
namespace {

using test::random_vector;

TEST(BroadcastAdd, ForwardAddsPerBatchRowAndAllowsInPlace) {
  const int B = 3, T = 4, H = 5;
  auto h = random_vector(B * T * H, 1), a = random_vector(B * H, 2);
  std::vector<float> out(h.size());
  cpu::broadcast_add(h.data(), a.data(), out.data(), B, T, H);
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t)
      for (int k = 0; k < H; ++k)
        EXPECT_EQ(out[(b * T + t) * H + k], h[(b * T + t) * H + k] + a[b * H + k]);
  cpu::broadcast_add(h.data(), a.data(), h.data(), B, T, H);
  EXPECT_EQ(h, out);
}

// loss = sum(out * w): da from backward against central differences (dh = w needs no op).
TEST(BroadcastAdd, BackwardMatchesFiniteDifferences) {
  const int B = 2, T = 5, H = 3;
  auto h = random_vector(B * T * H, 3), a = random_vector(B * H, 4), w = random_vector(B * T * H, 5);
  std::vector<float> out(h.size()), da(a.size(), 9.f);
  auto loss = [&] {
    cpu::broadcast_add(h.data(), a.data(), out.data(), B, T, H);
    double s = 0;
    for (size_t i = 0; i < out.size(); ++i) s += double(out[i]) * w[i];
    return s;
  };
  cpu::broadcast_add_backward(w.data(), da.data(), B, T, H);
  for (size_t i = 0; i < a.size(); ++i) {
    const float a0 = a[i], eps = 1e-2f;
    a[i] = a0 + eps;
    const double up = loss(), au = a[i];
    a[i] = a0 - eps;
    const double dn = loss(), ad = a[i];
    a[i] = a0;
    EXPECT_NEAR(da[i], (up - dn) / (au - ad), 1e-4 + 1e-3 * std::fabs(da[i])) << "at " << i;
  }
}

// Both backends sum over t in ascending order, so the gradients agree bit for bit. `shift`
// offsets every pointer by one float, which forces the scalar path on a multiple-of-4 H.
TEST(BroadcastAdd, CudaMatchesCpu) {
  REQUIRE_CUDA();
  Context gpu(Device::CUDA);
  struct Case {
    int B, T, H, shift;
  };
  for (Case c : {Case{1, 1, 1, 0}, Case{3, 7, 33, 0}, Case{1, 40, 256, 0}, Case{5, 40, 256, 0}, Case{4, 9, 256, 1}}) {
    SCOPED_TRACE(testing::Message() << "B=" << c.B << " T=" << c.T << " H=" << c.H << " shift=" << c.shift);
    const size_t nh = size_t(c.B) * c.T * c.H, na = size_t(c.B) * c.H;
    auto h = random_vector(nh + c.shift, 6), a = random_vector(na + c.shift, 7);
    std::vector<float> out(nh), da(na);
    cpu::broadcast_add(h.data() + c.shift, a.data() + c.shift, out.data(), c.B, c.T, c.H);
    cpu::broadcast_add_backward(h.data() + c.shift, da.data(), c.B, c.T, c.H);

    auto dH = test::to_device(gpu, h), dA = test::to_device(gpu, a);
    auto dOut = test::to_device(gpu, std::vector<float>(nh + c.shift));
    auto dDA = test::to_device(gpu, std::vector<float>(na + c.shift));
    const Exec ex = gpu.exec();
    broadcast_add(ex, dH.data() + c.shift, dA.data() + c.shift, dOut.data() + c.shift, c.B, c.T, c.H);
    broadcast_add_backward(ex, dH.data() + c.shift, dDA.data() + c.shift, c.B, c.T, c.H);
    auto gout = test::to_host(gpu, dOut), gda = test::to_host(gpu, dDA);
    EXPECT_EQ(std::vector<float>(gout.begin() + c.shift, gout.end()), out);
    EXPECT_EQ(0, std::memcmp(gda.data() + c.shift, da.data(), na * sizeof(float)));

    broadcast_add(ex, dH.data() + c.shift, dA.data() + c.shift, dH.data() + c.shift, c.B, c.T, c.H);  // in place
    auto gin = test::to_host(gpu, dH);
    EXPECT_EQ(std::vector<float>(gin.begin() + c.shift, gin.end()), out);
  }
}

}  // namespace
}  // namespace caption
