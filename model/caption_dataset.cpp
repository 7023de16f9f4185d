#include "model/caption_dataset.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <unordered_set>

namespace caption {

CaptionDataset build_dataset(const std::vector<CaptionRecord>& records, const std::vector<std::string>& images,
                             const FeatureTable& features, const Vocabulary& vocab, int max_len) {
  std::unordered_set<std::string> wanted(images.begin(), images.end());
  std::unordered_set<std::string> seen;
  CaptionDataset data;
  for (const auto& r : records) {
    if (!wanted.empty() && !wanted.count(r.image)) continue;
    auto row = features.find(r.image);
    if (!row) {
      ++data.missing_features;
      continue;
    }
    data.feature_row.push_back(*row);
    data.tokens.push_back(vocab.encode(clean_caption(r.text), max_len));
    seen.insert(r.image);
  }
  data.images = seen.size();
  return data;
}

TokenBatch make_batch(const CaptionDataset& data, const FeatureTable& features, const size_t* indices, int count) {
  TokenBatch b;
  b.B = count;
  size_t longest = 2;
  for (int i = 0; i < count; ++i) longest = std::max(longest, data.tokens[indices[i]].size());
  b.T = int(longest) - 1;
  b.features.resize(size_t(count) * features.dim);
  b.tokens.assign(size_t(count) * longest, 0);
  for (int i = 0; i < count; ++i) {
    const auto& t = data.tokens[indices[i]];
    std::copy(t.begin(), t.end(), b.tokens.begin() + i * longest);
    const float* f = features.row(data.feature_row[indices[i]]);
    std::copy(f, f + features.dim, b.features.begin() + size_t(i) * features.dim);
  }
  return b;
}

std::vector<std::vector<size_t>> epoch_batches(const CaptionDataset& data, int batch, uint64_t seed, int epoch) {
  const size_t n = data.tokens.size(), window = size_t(batch) * 50;
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed * 1000003 + epoch);
  std::shuffle(order.begin(), order.end(), rng);
  for (size_t i = 0; i < n; i += window)
    std::stable_sort(order.begin() + i, order.begin() + std::min(n, i + window),
                     [&](size_t a, size_t b) { return data.tokens[a].size() < data.tokens[b].size(); });
  std::vector<std::vector<size_t>> out;
  for (size_t i = 0; i < n; i += batch)
    out.emplace_back(order.begin() + i, order.begin() + std::min(n, i + batch));
  std::shuffle(out.begin(), out.end(), rng);
  return out;
}

LossSum evaluate(Decoder& dec, const CaptionDataset& data, const FeatureTable& features, int batch) {
  std::vector<size_t> order(data.tokens.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return data.tokens[a].size() < data.tokens[b].size(); });
  LossSum total;
  for (size_t i = 0; i < order.size(); i += size_t(batch)) {
    const size_t count = std::min(order.size() - i, size_t(batch));
    const LossSum s = dec.evaluate(make_batch(data, features, order.data() + i, int(count)));
    total.sum += s.sum;
    total.count += s.count;
  }
  return total;
}

}  // namespace caption
