// runtime/context.h's Event: ordering events are a no-op on the CPU; timing events (CUDA) time
// the work between two recorded points.
#include <gtest/gtest.h>

#include <stdexcept>

#include "runtime/context.h"
#include "tests/test_util.h"

namespace caption {
namespace {

TEST(Event, CpuEventsDoNothingAndCannotTime) {
  Event e(Device::CPU);
  e.record(nullptr);
  e.wait(nullptr);
  e.synchronize();
  EXPECT_THROW(Event(Device::CPU, true), std::logic_error);
}

TEST(Event, TimingEventsTimeTheWorkBetweenThemCuda) {
  REQUIRE_CUDA();
  Context ctx(Device::CUDA);
  const size_t n = size_t(64) << 20;  // 256 MB zeroed: well above the events' resolution
  PoolBuffer<float> buf(ctx.pool(), n, ctx.exec().stream);
  Event start(Device::CUDA, true), stop(Device::CUDA, true);
  start.record(ctx.exec().stream);
  ctx.zero(buf.data(), n * sizeof(float));
  stop.record(ctx.exec().stream);
  stop.synchronize();
  EXPECT_GT(stop.elapsed_ms_since(start), 0.f);
}

}  // namespace
}  // namespace caption
