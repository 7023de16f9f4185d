#pragma once
// The one parallel loop of the CPU kernels. Callers cut their work into items that depend on
// the problem size only (groups of rows, fixed-size chunks) and write each item's results in
// place, so results never depend on the number of threads or on which thread did what.
//
// The GEMMs run here too, cut into pieces for single-threaded OpenBLAS (kernels/gemm.cpp).
// Not OpenMP: libgomp's default wait policy keeps its workers busy-spinning for milliseconds
// after every parallel region, on the cores the next GEMM needs (whole CPU training steps ran
// ~1.7x slower than without threads, when the GEMMs had OpenBLAS's threads). Here workers wait
// for the next loop yielding their core for 200 us, then sleep, and the caller claims items
// too: when the other cores are busy (another process, a late wake-up) it does them all
// instead of waiting at a barrier.
#include <algorithm>
#include <cstddef>
#include <memory>
#include <type_traits>

namespace caption::cpu {

namespace detail {
void run_parallel(size_t count, void (*fn)(void*, size_t), void* ctx);
}

// f(k) for every k in [0, count), each exactly once, on the calling thread and the pool's
// workers; returns when all are done. Serial when parallel is false (callers pass false below
// ~100 us of work: waking a sleeping worker takes tens of microseconds), when count < 2, and when
// called from inside another parallel_for or while one runs on another thread. f must not
// throw. Items should be a few microseconds or more: each is claimed with an atomic add.
template <class F>
void parallel_for(size_t count, bool parallel, F&& f) {
  using Fn = std::remove_reference_t<F>;
  if (parallel && count > 1)
    detail::run_parallel(count, [](void* ctx, size_t k) { (*static_cast<Fn*>(ctx))(k); },
                         const_cast<void*>(static_cast<const void*>(std::addressof(f))));
  else
    for (size_t k = 0; k < count; ++k) f(k);
}

// f(r) for every row r in [0, rows), rows of `row_cost` each (in the caller's unit), in items
// of about `item_cost` whole rows, in parallel when all rows cost at least `parallel_min`. A
// row is done whole by one thread, so its result does not depend on the thread count.
template <class F>
void parallel_rows(size_t rows, size_t row_cost, size_t item_cost, size_t parallel_min, F&& f) {
  const size_t per_item = std::max<size_t>(1, item_cost / std::max<size_t>(row_cost, 1));
  parallel_for((rows + per_item - 1) / per_item, rows * row_cost >= parallel_min, [&](size_t item) {
    const size_t end = std::min(rows, (item + 1) * per_item);
    for (size_t r = item * per_item; r < end; ++r) f(r);
  });
}

// Threads parallel_for uses, the caller included: n, or with n <= 0 the default, which is
// OMP_NUM_THREADS when set and else one per hardware thread. For tests and tools; not to be
// called while a parallel_for runs.
void set_num_threads(int n);
// The number of threads parallel_for uses, the caller included.
int num_threads();

}  // namespace caption::cpu
