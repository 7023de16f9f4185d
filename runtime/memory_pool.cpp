#include "runtime/memory_pool.h"

#include <cstdlib>
#include <string>

namespace caption {
namespace {

size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

class HostAllocator : public BackingAllocator {
 public:
  void* allocate(size_t bytes) override { return std::aligned_alloc(MemoryPool::kAlignment, bytes); }
  void deallocate(void* p) override { std::free(p); }
};

std::string mib(size_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

#if CAPTION_HAS_CUDA
std::unique_ptr<BackingAllocator> make_cuda_allocator();  // memory_pool_cuda.cpp
#endif

std::unique_ptr<BackingAllocator> make_backing_allocator(Device device) {
  if (device == Device::CPU) return std::make_unique<HostAllocator>();
#if CAPTION_HAS_CUDA
  return make_cuda_allocator();
#else
  throw std::logic_error("CUDA memory pool in a CPU-only build");
#endif
}

MemoryPool::MemoryPool(Device device, size_t limit_bytes)
    : MemoryPool(device, make_backing_allocator(device), limit_bytes,
                 device == Device::CUDA ? (size_t(64) << 20) : (size_t(8) << 20)) {}

MemoryPool::MemoryPool(Device device, std::unique_ptr<BackingAllocator> backing, size_t limit_bytes,
                       size_t min_chunk)
    : device_(device), backing_(std::move(backing)), limit_(limit_bytes), min_chunk_(min_chunk) {}

MemoryPool::~MemoryPool() {
  for (auto& c : chunks_)
    if (c.live) backing_->deallocate(c.base);
}

char* MemoryPool::carve(Arena& arena, size_t bytes, size_t* chunk) {
  // Best fit keeps large free blocks intact for large requests.
  auto best = arena.free_blocks.end();
  for (auto it = arena.free_blocks.begin(); it != arena.free_blocks.end(); ++it)
    if (it->second.size >= bytes && (best == arena.free_blocks.end() || it->second.size < best->second.size))
      best = it;
  if (best == arena.free_blocks.end()) return nullptr;
  char* p = best->first;
  Block b = best->second;
  arena.free_blocks.erase(best);
  if (b.size > bytes) arena.free_blocks.emplace(p + bytes, Block{b.size - bytes, b.chunk});
  *chunk = b.chunk;
  return p;
}

void* MemoryPool::allocate(size_t bytes, Stream stream) {
  bytes = round_up(bytes == 0 ? 1 : bytes, kAlignment);
  std::lock_guard<std::mutex> lock(mutex_);
  auto redirect = redirects_.find(stream);
  const ArenaKey key = redirect == redirects_.end() ? ArenaKey(stream) : redirect->second;
  Arena& arena = arenas_[key];
  size_t chunk = 0;
  char* p = carve(arena, bytes, &chunk);
  if (!p) {
    size_t chunk_size = std::max(bytes, min_chunk_);
    if (limit_ && stats_.bytes_reserved + chunk_size > limit_) chunk_size = bytes;  // no slack near the cap
    // Memory never moves between arenas, so before giving up, the chunks that other streams hold
    // wholly free go back (cudaFree waits for the device, so no queued kernel still uses them).
    // Not while a graph is being captured (a redirected stream): cudaFree could end the capture,
    // and the caller's OutOfMemory handling (a smaller batch) should see the refusal as one.
    const bool capturing = redirect != redirects_.end();
    if (limit_ && stats_.bytes_reserved + chunk_size > limit_ && !capturing) release_unused_locked();
    if (limit_ && stats_.bytes_reserved + chunk_size > limit_)
      throw OutOfMemory("memory pool (" + std::string(device_name(device_)) + "): cannot allocate " +
                        mib(bytes) + " more (in use " + mib(stats_.bytes_in_use) + ", limit " +
                        mib(limit_) + ")");
    void* base = backing_->allocate(chunk_size);
    if (!base && !capturing && release_unused_locked()) base = backing_->allocate(chunk_size);
    if (!base)
      throw OutOfMemory("memory pool (" + std::string(device_name(device_)) + "): the device refused " +
                        mib(chunk_size) + " (pool in use " + mib(stats_.bytes_in_use) + ")");
    ++stats_.backing_allocs;
    stats_.bytes_reserved += chunk_size;
    chunks_.push_back({static_cast<char*>(base), chunk_size, key, true});
    arena.free_blocks.emplace(static_cast<char*>(base), Block{chunk_size, chunks_.size() - 1});
    p = carve(arena, bytes, &chunk);
  }
  allocations_.emplace(p, Allocation{key, Block{bytes, chunk}});
  stats_.bytes_in_use += bytes;
  stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.bytes_in_use);
  return p;
}

void MemoryPool::deallocate(void* ptr) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = allocations_.find(ptr);
  if (it == allocations_.end()) throw std::logic_error("memory pool: freeing a pointer it does not own");
  Allocation a = it->second;
  allocations_.erase(it);
  stats_.bytes_in_use -= a.block.size;
  auto& blocks = arenas_[a.arena].free_blocks;
  char* p = static_cast<char*>(ptr);
  auto next = blocks.find(p + a.block.size);
  if (next != blocks.end() && next->second.chunk == a.block.chunk) {
    a.block.size += next->second.size;
    blocks.erase(next);
  }
  auto ins = blocks.emplace(p, a.block).first;
  if (ins != blocks.begin()) {
    auto prev = std::prev(ins);
    if (prev->second.chunk == a.block.chunk && prev->first + prev->second.size == p) {
      prev->second.size += ins->second.size;
      blocks.erase(ins);
    }
  }
}

void MemoryPool::release_unused() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_unused_locked();
}

void MemoryPool::redirect(Stream stream, const void* arena) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!arena) {
    redirects_.erase(stream);
    return;
  }
  redirects_[stream] = arena;
  graph_arenas_.insert(arena);
}

void MemoryPool::close_arena(const void* arena) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = redirects_.begin(); it != redirects_.end();)
    it = it->second == arena ? redirects_.erase(it) : std::next(it);
  graph_arenas_.erase(arena);
  release_unused_locked(arena);
}

size_t MemoryPool::release_unused_locked(ArenaKey only) {
  size_t released = 0;
  for (size_t i = 0; i < chunks_.size(); ++i) {
    Chunk& c = chunks_[i];
    if (!c.live || (only ? c.arena != only : graph_arenas_.count(c.arena) > 0)) continue;
    auto& blocks = arenas_[c.arena].free_blocks;
    auto it = blocks.find(c.base);
    if (it == blocks.end() || it->second.size != c.size) continue;  // partly in use
    blocks.erase(it);
    backing_->deallocate(c.base);
    c.live = false;
    stats_.bytes_reserved -= c.size;
    ++stats_.backing_frees;
    ++released;
  }
  return released;
}

MemoryPool::Stats MemoryPool::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace caption
