#pragma once
// Memory pool: one arena per stream, carved from large chunks of a backing allocator
// (cudaMalloc on CUDA, aligned malloc on the CPU). After warm-up a training step
// allocates only from cached chunks, so `stats().backing_allocs` stops growing.
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "runtime/exec.h"

namespace caption {

class BackingAllocator {
 public:
  virtual ~BackingAllocator() = default;
  virtual void* allocate(size_t bytes) = 0;  // nullptr when out of memory
  virtual void deallocate(void* p) = 0;
};
std::unique_ptr<BackingAllocator> make_backing_allocator(Device device);

class OutOfMemory : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class MemoryPool {
 public:
  static constexpr size_t kAlignment = 256;

  struct Stats {
    size_t bytes_in_use = 0;    // handed out and not yet returned
    size_t peak_bytes = 0;      // maximum of bytes_in_use
    size_t bytes_reserved = 0;  // held from the backing allocator
    size_t backing_allocs = 0;  // cudaMalloc / malloc calls so far
    size_t backing_frees = 0;
  };

  // limit_bytes caps bytes_reserved (0: no cap); min_chunk is the smallest backing request.
  explicit MemoryPool(Device device, size_t limit_bytes = 0);
  MemoryPool(Device device, std::unique_ptr<BackingAllocator> backing, size_t limit_bytes,
             size_t min_chunk);
  ~MemoryPool();
  MemoryPool(const MemoryPool&) = delete;
  MemoryPool& operator=(const MemoryPool&) = delete;

  void* allocate(size_t bytes, Stream stream = nullptr);  // throws OutOfMemory
  void deallocate(void* p);
  // Gives wholly free chunks back to the backing allocator. allocate() does it too before it
  // reports OutOfMemory, so that a stream can use what another stream's arena holds unused.
  void release_unused();
  // Graph arenas (runtime/graph_cache.h). A captured CUDA graph replays with the addresses its
  // ops were given, so its scratch memory must stay its own: while `stream` is redirected to
  // `arena` (any unique address, e.g. the graph cache's), its allocations are carved from chunks
  // of that arena, which no other stream carves and release_unused leaves alone until
  // close_arena (the graphs are gone) lets them go. arena nullptr: the stream's own again.
  void redirect(Stream stream, const void* arena);
  void close_arena(const void* arena);
  Stats stats() const;
  Device device() const { return device_; }

 private:
  struct Block {
    size_t size;
    size_t chunk;  // index into chunks_; blocks merge only within one chunk
  };
  struct Arena {
    std::map<char*, Block> free_blocks;  // ordered by address for coalescing
  };
  // Arenas are named by their stream, or by a graph arena's address.
  using ArenaKey = const void*;
  struct Chunk {
    char* base;
    size_t size;
    ArenaKey arena;
    bool live;
  };
  struct Allocation {
    ArenaKey arena;
    Block block;
  };

  char* carve(Arena& arena, size_t bytes, size_t* chunk);
  // Releases the wholly free chunks of `only` (nullptr: of every arena not held by a graph);
  // returns how many. The caller holds mutex_.
  size_t release_unused_locked(ArenaKey only = nullptr);

  Device device_;
  std::unique_ptr<BackingAllocator> backing_;
  size_t limit_;
  size_t min_chunk_;
  mutable std::mutex mutex_;
  std::map<ArenaKey, Arena> arenas_;
  std::map<Stream, ArenaKey> redirects_;
  std::set<ArenaKey> graph_arenas_;  // open: their chunks are not released
  std::vector<Chunk> chunks_;
  std::unordered_map<void*, Allocation> allocations_;
  Stats stats_;
};

// RAII typed buffer from a pool.
template <class T>
class PoolBuffer {
 public:
  PoolBuffer() = default;
  PoolBuffer(MemoryPool& pool, size_t count, Stream stream = nullptr)
      : pool_(&pool), count_(count),
        data_(count ? static_cast<T*>(pool.allocate(count * sizeof(T), stream)) : nullptr) {}
  ~PoolBuffer() { reset(); }
  PoolBuffer(PoolBuffer&& o) noexcept { *this = std::move(o); }
  PoolBuffer& operator=(PoolBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      pool_ = o.pool_;
      count_ = o.count_;
      data_ = o.data_;
      o.data_ = nullptr;
      o.count_ = 0;
    }
    return *this;
  }
  PoolBuffer(const PoolBuffer&) = delete;
  PoolBuffer& operator=(const PoolBuffer&) = delete;

  void reset() {
    if (data_) pool_->deallocate(data_);
    data_ = nullptr;
    count_ = 0;
  }
  T* data() const { return data_; }
  size_t size() const { return count_; }

 private:
  MemoryPool* pool_ = nullptr;
  size_t count_ = 0;
  T* data_ = nullptr;
};

}  // namespace caption
