#pragma once
// Owns what one backend needs to run ops: the memory pool and, on CUDA, a stream and the
// cuBLAS and cuDNN handles bound to it, plus a second stream for uploads that overlap them.
// Hands out the Exec that ops take.
#include <memory>

#include "runtime/exec.h"
#include "runtime/memory_pool.h"

struct CUevent_st;

namespace caption {

class Context {
 public:
  explicit Context(Device device, size_t pool_limit_bytes = 0);
  // A context on another context's memory pool (its device, under its limit) with streams and
  // library handles of its own: work queued on it runs beside the other's, e.g. the encoder's
  // next batch beside the decoding of the one before. On CUDA its allocations come from an arena
  // of their own (the pool keeps one per stream, and takes back what one holds wholly free before
  // another runs out). The pool must outlive it.
  explicit Context(MemoryPool& shared_pool);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  Device device() const { return device_; }
  Exec exec() { return exec_; }
  MemoryPool& pool() { return *pool_; }
  void synchronize();  // waits for the work of both streams

  // Host <-> this context's memory, ordered on its stream; download waits for completion.
  void upload(void* dst, const void* host_src, size_t bytes);
  void download(void* host_dst, const void* src, size_t bytes);
  void copy(void* dst, const void* src, size_t bytes);  // within this context's memory
  void zero(void* dst, size_t bytes);

  // Transfers that overlap compute. On CUDA, upload_async runs on copy_stream(), beside the
  // kernels of exec().stream, and download_async is queued on exec().stream; both return at
  // once. Order them against the compute with Events. The host memory must be pinned
  // (HostBuffer) for a copy to be asynchronous, and left untouched until the copy has run.
  // Device memory that the copy stream writes is best taken from the compute stream's pool
  // arena (an arena of its own would hold a whole chunk); MemoryPool orders reuse within one
  // stream only, so its user orders the two streams with Events (ResNet50::ensure_slot).
  // On the CPU there is no copy stream (nullptr) and both are plain copies.
  Stream copy_stream() const;
  void upload_async(void* dst, const void* host_src, size_t bytes);
  void download_async(void* host_dst, const void* src, size_t bytes);

 private:
  void init_streams();
  void copy_on(Stream s, void* dst, const void* src, size_t bytes);
  struct CudaState;
  Device device_;
  std::unique_ptr<MemoryPool> owned_pool_;  // null in a context on a shared pool
  MemoryPool* pool_;
  std::unique_ptr<CudaState> cuda_;
  Exec exec_;
};

// A point in a stream's work that another stream or the host can wait for (a CUDA event).
// Waiting for an event never recorded returns at once. On the CPU every call has finished when
// it returns, so an Event does nothing. A timing event (CUDA only; benchmarks) also tells the
// time between two recorded points; the others skip the timestamp, which costs a little.
class Event {
 public:
  explicit Event(Device device, bool timing = false);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void record(Stream s);       // the point: everything queued on `s` so far
  void wait(Stream s) const;   // work queued on `s` from now on starts after the point
  void synchronize() const;    // the host waits for the point
  // Milliseconds from `start`'s point to this one; both timing events, both reached.
  float elapsed_ms_since(const Event& start) const;

 private:
  CUevent_st* event_ = nullptr;
};

}  // namespace caption
