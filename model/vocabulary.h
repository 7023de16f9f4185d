#pragma once
// Caption text -> words -> token ids. Ids 0..3 are the special tokens; a vocabulary file holds
// one token per line, the line number (from 0) being its id.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace caption {

// Lowercases, turns every byte outside a-z into a space (digits and punctuation included) and
// splits on the spaces.
std::vector<std::string> clean_caption(std::string_view text);

class Vocabulary {
 public:
  static constexpr int32_t kPad = 0, kStart = 1, kEnd = 2, kUnk = 3;

  Vocabulary() = default;  // empty, to be assigned from build() or load()

  // Words with count >= min_count over the (already cleaned) captions; after the four specials,
  // by descending count, ties alphabetical. Empty words and words spelled like a special token
  // are not counted.
  static Vocabulary build(const std::vector<std::vector<std::string>>& captions, int min_count);
  // Checks that the file starts with the four specials and has no empty or duplicate tokens.
  static Vocabulary load(const std::string& path);
  void save(const std::string& path) const;  // atomic

  int32_t id(const std::string& word) const;       // kUnk when unknown
  const std::string& word(int32_t id) const;       // std::out_of_range outside [0, size())
  int32_t size() const { return int32_t(words_.size()); }

  // "<start> w1 .. wn <end>", keeping at most max_len tokens (the first max_len-2 words);
  // max_len must be at least 2. No padding.
  std::vector<int32_t> encode(const std::vector<std::string>& words, int max_len) const;

 private:
  explicit Vocabulary(std::vector<std::string> words);
  std::vector<std::string> words_;
  std::unordered_map<std::string, int32_t> ids_;
};

}  // namespace caption
