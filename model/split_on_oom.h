#pragma once
// Work over n items in pieces of at most `piece`: a piece that runs out of device memory is
// halved and retried (down to one item), and the smaller size is kept for the calls after, so
// a batch too large for the card slows a job down instead of stopping it. fn(first, count)
// must write only its own items' results, so that a retried piece leaves no trace.
#include <algorithm>

#include "runtime/memory_pool.h"

namespace caption {

template <class Fn>
void run_in_pieces(int n, int& piece, Fn&& fn) {
  for (int first = 0; first < n;) {
    const int count = std::min(piece, n - first);
    try {
      fn(first, count);
    } catch (const OutOfMemory&) {
      if (count == 1) throw;
      piece = count / 2;
      continue;
    }
    first += count;
  }
}

}  // namespace caption
