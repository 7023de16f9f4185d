#include "model/json_fields.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>

#include "runtime/error.h"

namespace caption {

int json_int(const nlohmann::json& value, const std::string& path, const std::string& field, int lo, int hi) {
  int64_t v = INT64_MIN;  // non-integers stay out of range
  if (value.is_number_unsigned()) v = int64_t(std::min<uint64_t>(value.get<uint64_t>(), uint64_t(INT64_MAX)));
  else if (value.is_number_integer()) v = value.get<int64_t>();
  if (v < lo || v > hi) {
    const std::string range = hi == INT_MAX ? ">= " + std::to_string(lo) : std::to_string(lo) + ".." + std::to_string(hi);
    throw InputError(path, field + ": expected an integer " + range + ", found " + value.dump());
  }
  return int(v);
}

double json_number(const nlohmann::json& value, const std::string& path, const std::string& field) {
  // nlohmann reads 1e400 as infinity; no JSON number is NaN.
  if (!value.is_number() || !std::isfinite(value.get<double>()))
    throw InputError(path, field + ": expected a finite number, found " + value.dump());
  return value.get<double>();
}

}  // namespace caption
