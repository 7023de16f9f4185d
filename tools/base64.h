#pragma once
// Base64 (RFC 4648, standard alphabet, '=' padding): thumbnails in the HTML gallery, feature
// rows in the partial file of `caption features`.
#include <optional>
#include <string>
#include <string_view>

namespace caption::cli {

std::string base64_encode(std::string_view bytes);
// nullopt unless `text` is padded base64 of the standard alphabet with nothing else in it.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace caption::cli
