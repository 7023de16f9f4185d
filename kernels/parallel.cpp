#include "kernels/parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace caption::cpu {

namespace {

thread_local bool t_in_parallel = false;  // a pool worker, or a caller inside run()

constexpr std::chrono::microseconds kSpin{200};

// Workers wait for the next loop yielding their core for up to kSpin, then sleep on a condition
// variable. A loop is a job: the caller publishes it, wakes the workers and claims items
// itself, and workers that wake in time claim items too. When the items run out the caller
// waits only for the workers that joined the job (each finishing its last item), then closes
// the job, so that a worker waking later finds nothing.
class Pool {
 public:
  explicit Pool(int threads) {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

  void run(size_t count, void (*fn)(void*, size_t), void* ctx) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      fn_ = fn, ctx_ = ctx, count_ = count;
      next_.store(0, std::memory_order_relaxed);
      ++generation_;
    }
    wake_.notify_all();
    claim(fn, ctx, count);
    spin_until([&] { return joined_.load(std::memory_order_acquire) == 0; });
    std::unique_lock<std::mutex> lk(mu_);
    done_.wait(lk, [&] { return joined_ == 0; });
    fn_ = nullptr;
  }

 private:
  // Waits up to kSpin for done() with sched_yield, before the caller sleeps: the next loop of a
  // decode step, or the other piece of a GEMM finishing, is taken up within microseconds instead
  // of a futex wake-up's tens, and a runnable thread of another process gets the core meanwhile.
  // (Without it greedy decoding ran about a quarter slower than with OpenBLAS's spinning threads.)
  template <class Pred>
  static void spin_until(Pred done) {
    const auto until = std::chrono::steady_clock::now() + kSpin;
    while (!done() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  }

  void claim(void (*fn)(void*, size_t), void* ctx, size_t count) {
    for (size_t k; (k = next_.fetch_add(1, std::memory_order_relaxed)) < count;) fn(ctx, k);
  }

  void work() {
    t_in_parallel = true;  // a nested parallel_for in an item runs serially
    uint64_t seen = 0;
    for (;;) {
      spin_until([&] {
        return stop_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen;
      });
      std::unique_lock<std::mutex> lk(mu_);
      wake_.wait(lk, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (!fn_) continue;  // woke after the job closed
      auto fn = fn_;
      void* ctx = ctx_;
      const size_t count = count_;
      ++joined_;
      lk.unlock();
      claim(fn, ctx, count);
      lk.lock();
      if (--joined_ == 0) done_.notify_one();
    }
  }

  std::mutex mu_;
  std::condition_variable wake_, done_;
  // Written under mu_; atomic because the spins read them without it.
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> joined_{0};  // workers inside the open job
  void (*fn_)(void*, size_t) = nullptr;  // the open job, null when none
  void* ctx_ = nullptr;
  size_t count_ = 0;
  std::atomic<size_t> next_{0};
  std::vector<std::thread> workers_;
};

std::mutex g_mu;  // held by the one caller running a loop; guards the pool
std::unique_ptr<Pool> g_pool;
std::atomic<int> g_threads{0};  // 0: default_threads(); read without g_mu by num_threads()

// OMP_NUM_THREADS when set (the thread budget PyTorch reads too; OpenBLAS reads it as well but
// runs single-threaded under this pool, kernels/gemm.cpp), else one per hardware thread.
int default_threads() {
  static const int n = [] {
    if (const char* env = std::getenv("OMP_NUM_THREADS")) {
      const int v = std::atoi(env);  // "4" or the first level of "4,2"
      if (v > 0) return v;
    }
    return std::max(1, int(std::thread::hardware_concurrency()));
  }();
  return n;
}

}  // namespace

namespace detail {
void run_parallel(size_t count, void (*fn)(void*, size_t), void* ctx) {
  std::unique_lock<std::mutex> lk(g_mu, std::defer_lock);
  if (t_in_parallel || !lk.try_lock()) {  // nested, or another thread's loop holds the pool
    for (size_t k = 0; k < count; ++k) fn(ctx, k);
    return;
  }
  if (!g_pool) g_pool = std::make_unique<Pool>(num_threads());
  t_in_parallel = true;
  g_pool->run(count, fn, ctx);
  t_in_parallel = false;
}
}  // namespace detail

void set_num_threads(int n) {
  std::lock_guard<std::mutex> lk(g_mu);
  g_pool.reset();
  g_threads = n;
}

int num_threads() {
  const int n = g_threads.load();
  return n > 0 ? n : default_threads();
}

}  // namespace caption::cpu
