#include "runtime/memory_pool.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <map>

namespace caption {
namespace {

// Refuses past a byte capacity, which freed memory rejoins: a fake device for the pool's logic.
class CountingAllocator : public BackingAllocator {
 public:
  explicit CountingAllocator(size_t capacity) : capacity_(capacity) {}
  void* allocate(size_t bytes) override {
    if (used_ + bytes > capacity_) return nullptr;
    used_ += bytes;
    void* p = std::aligned_alloc(MemoryPool::kAlignment, bytes);
    sizes_[p] = bytes;
    return p;
  }
  void deallocate(void* p) override {
    used_ -= sizes_.at(p);
    sizes_.erase(p);
    std::free(p);
  }

 private:
  size_t capacity_, used_ = 0;
  std::map<void*, size_t> sizes_;
};


TEST(MemoryPool, AlignsAndTracksStatistics) {
  MemoryPool pool(Device::CPU, std::make_unique<CountingAllocator>(1 << 30), 0, 1 << 20);
  void* a = pool.allocate(3);
  void* b = pool.allocate(1000);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % MemoryPool::kAlignment, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b) % MemoryPool::kAlignment, 0u);
  EXPECT_NE(a, b);
  auto s = pool.stats();
  EXPECT_EQ(s.bytes_in_use, 256u + 1024u);
  EXPECT_EQ(s.backing_allocs, 1u);  // both carved from one chunk
  pool.deallocate(a);
  EXPECT_EQ(pool.stats().bytes_in_use, 1024u);
  EXPECT_EQ(pool.stats().peak_bytes, 1280u);
  pool.deallocate(b);
}

TEST(MemoryPool, ReusesFreedMemoryWithoutNewBackingCalls) {
  MemoryPool pool(Device::CPU, std::make_unique<CountingAllocator>(1 << 30), 0, 1 << 20);
  for (int round = 0; round < 5; ++round) {
    std::vector<void*> ptrs;
    for (size_t bytes : {4096, 100000, 77, 300000}) ptrs.push_back(pool.allocate(bytes));
    for (void* p : ptrs) pool.deallocate(p);
  }
  EXPECT_EQ(pool.stats().backing_allocs, 1u);
  // Freed neighbours coalesce: the whole chunk is one block again.
  void* big = pool.allocate(1 << 20);
  EXPECT_EQ(pool.stats().backing_allocs, 1u);
  pool.deallocate(big);
}

TEST(MemoryPool, StreamsHaveSeparateArenas) {
  MemoryPool pool(Device::CPU, std::make_unique<CountingAllocator>(1 << 30), 0, 1 << 20);
  auto s1 = reinterpret_cast<Stream>(uintptr_t(1)), s2 = reinterpret_cast<Stream>(uintptr_t(2));
  void* a = pool.allocate(100, s1);
  void* b = pool.allocate(100, s2);
  EXPECT_EQ(pool.stats().backing_allocs, 2u);
  pool.deallocate(a);
  pool.deallocate(b);
}

TEST(MemoryPool, LimitGivesClearOutOfMemory) {
  MemoryPool pool(Device::CPU, std::make_unique<CountingAllocator>(1 << 30), 4 << 20, 1 << 20);
  void* a = pool.allocate(3 << 20);
  try {
    pool.allocate(2 << 20);
    FAIL() << "expected OutOfMemory";
  } catch (const OutOfMemory& e) {
    EXPECT_NE(std::string(e.what()).find("limit 4 MiB"), std::string::npos) << e.what();
  }
  pool.deallocate(a);
  void* b = pool.allocate(2 << 20);  // fits in the freed chunk
  pool.deallocate(b);
}

TEST(MemoryPool, BackingRefusalIsOutOfMemory) {
  MemoryPool pool(Device::CPU, std::make_unique<CountingAllocator>(2 << 20), 0, 1 << 20);
  void* a = pool.allocate(1 << 20);
  EXPECT_THROW(pool.allocate(3 << 20), OutOfMemory);
  pool.deallocate(a);
}

// Memory freed on one stream stays in that stream's arena; before refusing another stream, the
// pool gives such wholly free chunks back, under its own limit and when the device refuses.
TEST(MemoryPool, OutOfMemoryFirstTakesBackWhatOtherStreamsHoldFree) {
  auto s1 = reinterpret_cast<Stream>(uintptr_t(1)), s2 = reinterpret_cast<Stream>(uintptr_t(2));
  for (bool device_refuses : {false, true}) {
    SCOPED_TRACE(device_refuses ? "device capacity" : "pool limit");
    MemoryPool pool(Device::CPU, std::make_unique<CountingAllocator>(device_refuses ? 4 << 20 : 1 << 30),
                    device_refuses ? 0 : 4 << 20, 1 << 20);
    pool.deallocate(pool.allocate(3 << 20, s1));
    void* b = pool.allocate(3 << 20, s2);
    EXPECT_EQ(pool.stats().backing_frees, 1u);
    EXPECT_EQ(pool.stats().bytes_reserved, size_t(3) << 20);
    pool.deallocate(b);
  }
}

TEST(MemoryPool, ReleaseUnusedReturnsEmptyChunks) {
  MemoryPool pool(Device::CPU, std::make_unique<CountingAllocator>(1 << 30), 0, 1 << 20);
  void* keep = pool.allocate(100);
  void* big = pool.allocate(4 << 20);  // its own chunk
  pool.deallocate(big);
  pool.release_unused();
  auto s = pool.stats();
  EXPECT_EQ(s.backing_frees, 1u);
  EXPECT_EQ(s.bytes_reserved, size_t(1) << 20);
  pool.deallocate(keep);
}

// A graph arena's chunks serve only the stream redirected to it, survive release_unused (a
// captured graph still uses their addresses) and go back at close_arena.
TEST(MemoryPool, GraphArenaKeepsItsChunksUntilClosed) {
  MemoryPool pool(Device::CPU, std::make_unique<CountingAllocator>(1 << 30), 0, 1 << 20);
  auto s1 = reinterpret_cast<Stream>(uintptr_t(1));
  int graphs = 0;  // its address names the arena
  void* before = pool.allocate(100, s1);
  pool.redirect(s1, &graphs);
  void* scratch = pool.allocate(4 << 20, s1);
  EXPECT_EQ(pool.stats().backing_allocs, 2u);  // not carved from the stream's own chunk
  pool.deallocate(scratch);
  pool.redirect(s1, nullptr);
  void* after = pool.allocate(4 << 20, s1);  // the stream's own arena again: a chunk of its own
  EXPECT_EQ(pool.stats().backing_allocs, 3u);
  pool.deallocate(after);
  pool.release_unused();
  EXPECT_EQ(pool.stats().backing_frees, 1u);  // the stream's free 4 MiB chunk, not the graph's
  pool.redirect(s1, &graphs);
  pool.deallocate(pool.allocate(4 << 20, s1));  // the graph arena's chunk again
  EXPECT_EQ(pool.stats().backing_allocs, 3u);
  pool.close_arena(&graphs);
  EXPECT_EQ(pool.stats().backing_frees, 2u);
  void* plain = pool.allocate(100, s1);  // closing ended the redirect
  EXPECT_EQ(pool.stats().backing_allocs, 3u);  // from the stream's first chunk
  pool.deallocate(plain);
  pool.deallocate(before);
}

// While a stream is redirected (a graph being captured), running out does not give back other
// arenas' free chunks (cudaFree could end the capture): OutOfMemory, which GraphCache answers by
// releasing them itself and capturing again.
TEST(MemoryPool, RedirectedStreamRunsOutWithoutReleasing) {
  MemoryPool pool(Device::CPU, std::make_unique<CountingAllocator>(1 << 30), 4 << 20, 1 << 20);
  auto s1 = reinterpret_cast<Stream>(uintptr_t(1));
  int graphs = 0;
  pool.deallocate(pool.allocate(3 << 20, s1));  // a free 3 MiB chunk in the stream's own arena
  pool.redirect(s1, &graphs);
  EXPECT_THROW(pool.allocate(3 << 20, s1), OutOfMemory);
  EXPECT_EQ(pool.stats().backing_frees, 0u);
  pool.release_unused();
  void* p = pool.allocate(3 << 20, s1);
  pool.deallocate(p);
  pool.close_arena(&graphs);
}

TEST(MemoryPool, ForeignPointerIsRejected) {
  MemoryPool pool(Device::CPU);
  int x = 0;
  EXPECT_THROW(pool.deallocate(&x), std::logic_error);
}

}  // namespace
}  // namespace caption
