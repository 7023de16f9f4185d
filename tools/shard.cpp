#include "tools/shard.h"

#include <stdexcept>

namespace caption::cli {

Shard parse_shard(const std::string& text) {
  const std::invalid_argument bad("--shard '" + text + "': expected i/n with 0 <= i < n, e.g. 0/4");
  auto number = [&](const std::string& s) {
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) throw bad;
    return size_t(std::stoul(s));
  };
  const size_t slash = text.find('/');
  if (slash == std::string::npos) throw bad;
  Shard s{number(text.substr(0, slash)), number(text.substr(slash + 1))};
  if (s.count == 0 || s.index >= s.count) throw bad;
  return s;
}

}  // namespace caption::cli
