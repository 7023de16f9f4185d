#include "runtime/graph_cache.h"

#if CAPTION_HAS_CUDA
#include "runtime/cuda_check.h"
#endif

namespace caption {

GraphCache::GraphCache(Context& ctx) : ctx_(ctx) {}

GraphCache::~GraphCache() { clear(); }

void GraphCache::clear() {
#if CAPTION_HAS_CUDA
  if (ctx_.device() == Device::CPU) return;
  if (!graphs_.empty()) {
    // The graphs may still be running: their scratch must not be reused before they finish.
    cudaStreamSynchronize(ctx_.exec().stream);
    for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
    graphs_.clear();
  }
  plain_.clear();
  ctx_.pool().close_arena(this);
#endif
}

void GraphCache::run(const Key& key, const std::function<void()>& work) {
  if (ctx_.device() == Device::CPU) {
    work();
    return;
  }
#if CAPTION_HAS_CUDA
  if (plain_.count(key)) return work();
  auto it = graphs_.find(key);
  if (it == graphs_.end()) {
    if (graphs_.size() >= kMaxGraphs) clear();
    // Out of memory while capturing (only under a memory limit): the pool does not give back
    // other arenas' free memory while capturing, so that goes back first; then the other
    // graphs' scratch too; and if even then no graph fits, this run goes without one (its ops
    // alone need no more than without graphs).
    CUgraphExec_st* exec = nullptr;
    for (int attempt = 0; !exec; ++attempt) {
      try {
        exec = capture(work);
      } catch (const OutOfMemory&) {
        if (attempt == 2) {
          plain_.insert(key);  // until clear(): memory may be freer then
          work();
          return;
        }
        if (attempt == 1) clear();
        ctx_.pool().release_unused();
      }
    }
    it = graphs_.emplace(key, exec).first;
    ++captures_;
  }
  CUDA_CHECK_THROW(cudaGraphLaunch(it->second, ctx_.exec().stream));
  ++launches_;
#else
  (void)key;
  (void)work;
#endif
}

#if CAPTION_HAS_CUDA
CUgraphExec_st* GraphCache::capture(const std::function<void()>& work) {
  const Stream s = ctx_.exec().stream;
  // Relaxed: the pool may cudaMalloc a chunk for the graphs' arena while capturing.
  CUDA_CHECK_THROW(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
  cudaGraph_t graph = nullptr;
  try {
    ctx_.pool().redirect(s, this);
    work();
  } catch (...) {
    ctx_.pool().redirect(s, nullptr);
    if (cudaStreamEndCapture(s, &graph) == cudaSuccess && graph) cudaGraphDestroy(graph);
    cudaGetLastError();  // the failed capture's error is the one being thrown
    throw;
  }
  ctx_.pool().redirect(s, nullptr);
  CUDA_CHECK_THROW(cudaStreamEndCapture(s, &graph));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  CUDA_CHECK_THROW(err);
  return exec;
}
#endif

}  // namespace caption
