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
  ctx_.pool().close_arena(this);
#endif
}

void GraphCache::run(const Key& key, const std::function<void()>& work) {
  if (ctx_.device() == Device::CPU) {
    work();
    return;
  }
#if CAPTION_HAS_CUDA
  const Stream s = ctx_.exec().stream;
  auto it = graphs_.find(key);
  if (it == graphs_.end()) {
    // Relaxed: the pool may cudaMalloc a chunk for the graph's arena while capturing, and other
    // threads (describe's encoder) go on with their own streams meanwhile.
    CUDA_CHECK_THROW(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
    ctx_.pool().redirect(s, this);
    cudaGraph_t graph = nullptr;
    try {
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
    it = graphs_.emplace(key, exec).first;
    ++captures_;
  }
  CUDA_CHECK_THROW(cudaGraphLaunch(it->second, s));
  ++launches_;
#else
  (void)key;
  (void)work;
#endif
}

}  // namespace caption
