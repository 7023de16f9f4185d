#include "model/vocabulary.h"

#include <algorithm>
#include <stdexcept>

#include "model/atomic_file.h"
#include "model/read_file.h"
#include "runtime/error.h"

namespace caption {
namespace {

const char* const kSpecials[] = {"<pad>", "<start>", "<end>", "<unk>"};

bool is_special(const std::string& w) {
  return std::find(std::begin(kSpecials), std::end(kSpecials), w) != std::end(kSpecials);
}

}  // namespace

std::vector<std::string> clean_caption(std::string_view text) {
  std::vector<std::string> words;
  std::string cur;
  for (char c : text) {
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    if (c >= 'a' && c <= 'z') {
      cur += c;
    } else if (!cur.empty()) {
      words.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) words.push_back(std::move(cur));
  return words;
}

Vocabulary::Vocabulary(std::vector<std::string> words) : words_(std::move(words)) {
  ids_.reserve(words_.size());
  for (size_t i = 0; i < words_.size(); ++i) ids_.emplace(words_[i], int32_t(i));
}

Vocabulary Vocabulary::build(const std::vector<std::vector<std::string>>& captions, int min_count) {
  std::unordered_map<std::string, int64_t> counts;
  for (const auto& caption : captions)
    for (const auto& w : caption)
      if (!w.empty() && !is_special(w)) ++counts[w];
  std::vector<std::pair<std::string, int64_t>> kept;
  for (auto& [w, n] : counts)
    if (n >= min_count) kept.emplace_back(w, n);
  std::sort(kept.begin(), kept.end(),
            [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
  std::vector<std::string> words(std::begin(kSpecials), std::end(kSpecials));
  for (auto& [w, n] : kept) words.push_back(std::move(w));
  return Vocabulary(std::move(words));
}

Vocabulary Vocabulary::load(const std::string& path) {
  const std::string text = read_file(path);
  std::vector<std::string> words;
  std::unordered_map<std::string, size_t> first_line;
  for_each_line(text, [&](size_t line_no, std::string_view line) {
    if (line.empty()) throw InputError(path, at_line(line_no, "empty token"));
    if (line.find_first_of(" \t\v\f\r") != std::string_view::npos)
      throw InputError(path, at_line(line_no, "token contains whitespace"));
    if (!is_utf8(line)) throw InputError(path, at_line(line_no, "token is not valid UTF-8"));
    std::string token(line);
    if (line_no <= 4 && token != kSpecials[line_no - 1])
      throw InputError(path, at_line(line_no, "expected special token '" + std::string(kSpecials[line_no - 1]) +
                                                  "', found '" + token + "'"));
    auto [it, fresh] = first_line.emplace(token, line_no);
    if (!fresh)
      throw InputError(path, at_line(line_no, "duplicate token '" + token + "' (first on line " +
                                                  std::to_string(it->second) + ")"));
    if (words.size() >= size_t(INT32_MAX)) throw InputError(path, at_line(line_no, "too many tokens"));
    words.push_back(std::move(token));
  });
  if (words.size() < 4)
    throw InputError(path, "has " + std::to_string(words.size()) + " tokens; the 4 special tokens are required");
  return Vocabulary(std::move(words));
}

void Vocabulary::save(const std::string& path) const {
  std::string text;
  for (const auto& w : words_) text += w + "\n";
  write_file_atomic(path, text);
}

int32_t Vocabulary::id(const std::string& word) const {
  auto it = ids_.find(word);
  return it == ids_.end() ? kUnk : it->second;
}

const std::string& Vocabulary::word(int32_t id) const {
  if (id < 0 || id >= size()) throw std::out_of_range("token id " + std::to_string(id) + " outside the vocabulary");
  return words_[size_t(id)];
}

std::vector<int32_t> Vocabulary::encode(const std::vector<std::string>& words, int max_len) const {
  if (max_len < 2) throw std::invalid_argument("encode: max_len must be at least 2");
  const size_t n = std::min(words.size(), size_t(max_len) - 2);
  std::vector<int32_t> ids;
  ids.reserve(n + 2);
  ids.push_back(kStart);
  for (size_t i = 0; i < n; ++i) ids.push_back(id(words[i]));
  ids.push_back(kEnd);
  return ids;
}

}  // namespace caption
