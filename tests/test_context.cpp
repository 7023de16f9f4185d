// runtime/context.h's contexts on a shared memory pool: the pool's device and limit, and on CUDA
// streams and library handles of their own (the encoder's beside the decoder's in describe).
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "runtime/context.h"
#include "tests/test_util.h"

namespace caption {
namespace {

TEST(Context, SharedPoolContextAllocatesUnderTheOwnersLimit) {
  Context owner(Device::CPU, size_t(32) << 20);
  Context side(owner.pool());
  EXPECT_EQ(side.device(), Device::CPU);
  EXPECT_EQ(&side.pool(), &owner.pool());
  PoolBuffer<float> a(side.pool(), size_t(4) << 20, side.exec().stream);  // 16 MB
  EXPECT_EQ(owner.pool().stats().bytes_in_use, size_t(16) << 20);
  PoolBuffer<float> b(owner.pool(), size_t(2) << 20, owner.exec().stream);  // 8 MB more: 24 of 32
  EXPECT_THROW(PoolBuffer<float>(side.pool(), size_t(4) << 20, side.exec().stream), OutOfMemory);
}

TEST(Context, SharedPoolContextHasStreamsOfItsOwnCuda) {
  REQUIRE_CUDA();
  Context owner(Device::CUDA);
  Context side(owner.pool());
  EXPECT_EQ(side.device(), Device::CUDA);
  EXPECT_NE(side.exec().stream, owner.exec().stream);
  EXPECT_NE(side.copy_stream(), owner.copy_stream());
  EXPECT_NE(side.exec().blas, owner.exec().blas);
  EXPECT_NE(side.exec().dnn, owner.exec().dnn);
  std::vector<float> host(1000), back(1000);
  std::iota(host.begin(), host.end(), 0.f);
  PoolBuffer<float> a(side.pool(), host.size(), side.exec().stream), b(owner.pool(), host.size(), owner.exec().stream);
  side.upload(a.data(), host.data(), host.size() * sizeof(float));
  side.synchronize();
  owner.copy(b.data(), a.data(), host.size() * sizeof(float));
  owner.download(back.data(), b.data(), back.size() * sizeof(float));
  EXPECT_EQ(back, host);
}

}  // namespace
}  // namespace caption
