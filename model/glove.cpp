#include "model/glove.h"

#include <charconv>
#include <cmath>

#include "model/read_file.h"
#include "runtime/error.h"

namespace caption {

GloveVectors read_glove(const std::string& path) {
  const std::string text = read_file(path);
  GloveVectors out;
  std::unordered_map<std::string, size_t> first_line;
  for_each_line(text, [&](size_t line_no, std::string_view line) {
    line = trim(line);
    if (line.empty()) return;
    size_t end = line.find_first_of(" \t");
    std::string word(line.substr(0, end));
    std::vector<float> v;
    v.reserve(size_t(out.dim));
    const char* p = line.data() + word.size();
    const char* const stop = line.data() + line.size();
    while (true) {
      while (p < stop && (*p == ' ' || *p == '\t')) ++p;
      if (p == stop) break;
      float x;
      auto [next, ec] = std::from_chars(p, stop, x);
      if (ec != std::errc() || (next < stop && *next != ' ' && *next != '\t') || !std::isfinite(x)) {
        const char* tok_end = p;
        while (tok_end < stop && *tok_end != ' ' && *tok_end != '\t') ++tok_end;
        throw InputError(path, at_line(line_no, "bad number '" + std::string(p, tok_end) + "' in the vector of '" +
                                                    word + "'"));
      }
      v.push_back(x);
      p = next;
    }
    if (v.empty()) throw InputError(path, at_line(line_no, "word '" + word + "' has no vector"));
    if (out.dim == 0) out.dim = int(v.size());
    if (v.size() != size_t(out.dim))
      throw InputError(path, at_line(line_no, "'" + word + "' has " + std::to_string(v.size()) + " values, expected " +
                                                  std::to_string(out.dim)));
    auto [it, fresh] = first_line.emplace(word, line_no);
    if (!fresh)
      throw InputError(path, at_line(line_no, "word '" + word + "' repeats line " + std::to_string(it->second)));
    out.vectors.emplace(std::move(word), std::move(v));
  });
  if (out.vectors.empty()) throw InputError(path, "no word vectors");
  return out;
}

}  // namespace caption
