// runtime/graph_cache.h: on the CPU the work runs every time; on CUDA a key's first run is
// captured and later runs replay it, reading device memory as it is at each launch, with
// scratch memory that stays the graph's while the stream's own memory is reused.
#include "runtime/graph_cache.h"

#include <gtest/gtest.h>

#include "kernels/broadcast_add.h"
#include "kernels/dropout.h"
#include "tests/test_util.h"

namespace caption {
namespace {

TEST(GraphCache, CpuRunsTheWorkEveryTime) {
  Context ctx(Device::CPU);
  GraphCache graphs(ctx);
  int calls = 0;
  for (int i = 0; i < 3; ++i) graphs.run({1, 2}, [&] { ++calls; });
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(graphs.captures(), 0u);
}

TEST(GraphCache, ReplaysWithCurrentMemoryAndKeepsItsScratchCuda) {
  REQUIRE_CUDA();
  Context ctx(Device::CUDA);
  const Exec ex = ctx.exec();
  const int B = 3, H = 1001;
  const size_t n = size_t(B) * H;
  const auto x = test::random_vector(n, 1);
  auto dx = test::to_device(ctx, x), dy = test::to_device(ctx, std::vector<float>(n));
  PoolBuffer<uint64_t> offset(ctx.pool(), 1, ex.stream);
  GraphCache graphs(ctx);
  int calls = 0;
  // y = dropout(x) + x, through scratch taken inside the work.
  auto work = [&] {
    ++calls;
    PoolBuffer<float> scratch(ctx.pool(), n, ex.stream);
    dropout_forward(ex, dx.data(), scratch.data(), n, 0.5f, 9, 0, offset.data());
    broadcast_add(ex, scratch.data(), dx.data(), dy.data(), B, 1, H);
  };
  const std::vector<float> ones(n, 1.f);
  PoolBuffer<float> neighbour;
  for (uint64_t off : {100u, 200u, 300u}) {
    SCOPED_TRACE("offset " + std::to_string(off));
    ctx.upload(offset.data(), &off, sizeof(off));
    graphs.run({7}, work);
    std::vector<float> want(n);
    cpu::dropout_forward(x.data(), want.data(), n, 0.5f, 9, off);
    cpu::broadcast_add(want.data(), x.data(), want.data(), B, 1, H);
    EXPECT_EQ(test::to_host(ctx, dy), want);
    if (neighbour.data()) EXPECT_EQ(test::to_host(ctx, neighbour), ones);
    // Free chunks go back and the stream allocates afresh: none of it may be the graph's scratch.
    ctx.pool().release_unused();
    neighbour = test::to_device(ctx, ones);
  }
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(graphs.captures(), 1u);
  EXPECT_EQ(graphs.launches(), 3u);
  graphs.clear();
  graphs.run({7}, work);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(graphs.captures(), 2u);
}

}  // namespace
}  // namespace caption
