#pragma once
// Pretrained GloVe word vectors in their text format: "word v1 .. vD" per line.
#include <string>
#include <unordered_map>
#include <vector>

namespace caption {

struct GloveVectors {
  int dim = 0;
  std::unordered_map<std::string, std::vector<float>> vectors;
};

// Every line must have the same D >= 1 and finite numbers; blank lines are skipped. A bad
// number, a wrong count or a repeated word is an InputError with the line number.
GloveVectors read_glove(const std::string& path);

}  // namespace caption
