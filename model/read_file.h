#pragma once
// Whole-file reads and line splitting shared by the model readers. Every failure is an
// InputError naming the file.
#include <string>
#include <string_view>

namespace caption {

// The file's bytes, read once. Directories and unreadable files are InputErrors.
std::string read_file(const std::string& path);

// Calls fn(line_number, line) for every line of `text` (1-based numbers; '\n' separated; a
// trailing '\r' is dropped so CRLF files read the same; no empty line after a final '\n').
template <class Fn>
void for_each_line(std::string_view text, Fn&& fn) {
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    fn(++line_no, line);
  }
}

// `s` without leading and trailing spaces, tabs, '\r', '\n', '\v', '\f'.
std::string_view trim(std::string_view s);

// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF): text that ends up in JSON output must be, or writing it fails far from its source.
bool is_utf8(std::string_view s);

// "line N: problem", the form line-level InputErrors use.
std::string at_line(size_t line_no, const std::string& problem);

}  // namespace caption
