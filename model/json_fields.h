#pragma once
// Strict readers of config.json values: an integer field must hold an integer within its range
// (not 224.9, not 2^32 + 5), a number field a finite number; anything else is an InputError
// naming the file and the field.
#include <nlohmann/json.hpp>
#include <string>

namespace caption {

// `value` as an int in [lo, hi]; `field` is its dotted name ("decoder.max_len").
int json_int(const nlohmann::json& value, const std::string& path, const std::string& field, int lo, int hi);
// `value` as a finite number.
double json_number(const nlohmann::json& value, const std::string& path, const std::string& field);

}  // namespace caption
