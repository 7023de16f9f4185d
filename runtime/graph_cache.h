#pragma once
// CUDA graphs for op sequences that run again and again on the same shapes and buffers (a
// decode step, a training step). The first run for a key is captured from the context's stream
// into a graph; later runs launch that graph in one call, without the ops' host work (cuBLASLt
// plans, argument setup, one launch per kernel) and with the kernels back to back on the device.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <vector>

#include "runtime/context.h"

struct CUgraphExec_st;

namespace caption {

class GraphCache {
 public:
  using Key = std::vector<int64_t>;

  explicit GraphCache(Context& ctx);
  ~GraphCache();
  GraphCache(const GraphCache&) = delete;
  GraphCache& operator=(const GraphCache&) = delete;

  // Runs `work`, which must queue its ops on ctx.exec().stream only (no host copies, no waits)
  // and depend on nothing outside `key` that changes between runs: every shape, scalar and
  // buffer address it uses is either in the key or fixed while the graphs live. On the CPU
  // `work` is called every time. On CUDA the first run of a key captures it; later runs launch
  // the captured graph instead. Scratch memory that the ops take while being captured comes
  // from a pool arena of this cache's (MemoryPool::redirect) and stays theirs until clear().
  // A capture that runs out of memory is tried again after the pool gives back what other
  // arenas hold unused, then after the other graphs are dropped too; failing a third time, that
  // key runs without a graph until clear().
  void run(const Key& key, const std::function<void()>& work);
  // Drops every graph (their buffers are about to be freed or replaced) and their scratch.
  void clear();
  // At most this many graphs are kept; a capture beyond it drops them all first. Training on
  // Flickr8k-like captions meets about a hundred shapes (B, T, padded rows).
  static constexpr size_t kMaxGraphs = 256;

  size_t captures() const { return captures_; }
  size_t launches() const { return launches_; }  // graph launches, captures included

 private:
  CUgraphExec_st* capture(const std::function<void()>& work);  // instantiated, not launched

  Context& ctx_;
  std::map<Key, CUgraphExec_st*> graphs_;
  std::set<Key> plain_;  // keys whose capture ran out of memory
  size_t captures_ = 0, launches_ = 0;
};

}  // namespace caption
