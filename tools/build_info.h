#pragma once
// What this binary was built with and what it finds at run time, for `caption --version`: the
// lines a bug report or a benchmark result should carry.
#include <string>

namespace caption::cli {

std::string build_info();

}  // namespace caption::cli
