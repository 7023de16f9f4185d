#pragma once
// --shard i/n: this process takes inputs i, i+n, i+2n, ... (0 <= i < n) of the expanded input
// list (arguments in order, each folder sorted by path), the same in every process, so n
// processes or machines split a collection without coordinating and together cover every input
// exactly once.
#include <string>
#include <vector>

namespace caption::cli {

struct Shard {
  size_t index = 0, count = 1;
  bool selects(size_t i) const { return i % count == index; }
};

// "i/n"; std::invalid_argument (a usage error) for anything else.
Shard parse_shard(const std::string& text);

template <class T>
std::vector<T> take_shard(const std::vector<T>& all, const Shard& shard) {
  std::vector<T> out;
  for (size_t i = 0; i < all.size(); ++i)
    if (shard.selects(i)) out.push_back(all[i]);
  return out;
}

}  // namespace caption::cli
