#include "model/caption_metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <unordered_map>

namespace caption {
namespace {

constexpr int kMaxN = 4;

// Counts of the n-grams of one caption, one map per n (index n-1), keyed by the words joined
// with spaces.
using NgramCounts = std::array<std::unordered_map<std::string, int>, kMaxN>;

NgramCounts count_ngrams(const Tokens& words) {
  NgramCounts counts;
  for (size_t i = 0; i < words.size(); ++i) {
    std::string key;
    for (int n = 0; n < kMaxN && i + n < words.size(); ++n) {
      if (n) key += ' ';
      key += words[i + n];
      ++counts[n][key];
    }
  }
  return counts;
}

void check_sizes(const std::vector<Tokens>& candidates, const std::vector<std::vector<Tokens>>& references) {
  if (candidates.size() != references.size())
    throw std::invalid_argument("caption metrics: " + std::to_string(candidates.size()) + " candidates but " +
                                std::to_string(references.size()) + " reference sets");
  for (const auto& refs : references)
    if (refs.empty()) throw std::invalid_argument("caption metrics: an image has no reference captions");
}

// Length of the longest common subsequence, one row of the DP table at a time.
size_t lcs_length(const Tokens& a, const Tokens& b) {
  std::vector<size_t> prev(b.size() + 1, 0), cur(b.size() + 1, 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// A caption as CIDEr sees it: TF-IDF weight per n-gram, the norm per n, and its length.
struct TfIdf {
  std::array<std::unordered_map<std::string, double>, kMaxN> weight;
  std::array<double, kMaxN> norm{};
  double length = 0;
};

TfIdf tf_idf(const Tokens& words, double log_images, const std::unordered_map<std::string, int>& df) {
  TfIdf v;
  NgramCounts counts = count_ngrams(words);
  for (int n = 0; n < kMaxN; ++n) {
    double sq = 0;
    for (const auto& [gram, tf] : counts[n]) {
      auto it = df.find(gram);
      const double w = tf * (log_images - std::log(std::max(1.0, it == df.end() ? 0.0 : double(it->second))));
      v.weight[n][gram] = w;
      sq += w * w;
    }
    v.norm[n] = std::sqrt(sq);
  }
  // coco-caption counts bigrams here (a known quirk); the difference of two such lengths is the
  // difference of the word counts for any non-empty captions, so words are counted.
  v.length = double(words.size());
  return v;
}

constexpr double kCiderSigma = 6.0;

// Sum over n of the clipped cosine of candidate and reference, times the length penalty.
double cider_similarity(const TfIdf& cand, const TfIdf& ref) {
  const double delta = cand.length - ref.length;
  const double penalty = std::exp(-delta * delta / (2 * kCiderSigma * kCiderSigma));
  double sum = 0;
  for (int n = 0; n < kMaxN; ++n) {
    double dot = 0;
    for (const auto& [gram, w] : cand.weight[n]) {
      auto it = ref.weight[n].find(gram);
      if (it != ref.weight[n].end()) dot += std::min(w, it->second) * it->second;
    }
    if (cand.norm[n] != 0 && ref.norm[n] != 0) dot /= cand.norm[n] * ref.norm[n];
    sum += dot * penalty;
  }
  return sum;
}

}  // namespace

std::array<double, 4> corpus_bleu(const std::vector<Tokens>& candidates,
                                  const std::vector<std::vector<Tokens>>& references) {
  check_sizes(candidates, references);
  std::array<double, kMaxN> matches{}, totals{};
  double cand_len = 0, ref_len = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Tokens& cand = candidates[i];
    const NgramCounts counts = count_ngrams(cand);
    // Clip each candidate n-gram count by its largest count in any one reference.
    NgramCounts max_ref;
    size_t closest = references[i].front().size();
    for (const Tokens& ref : references[i]) {
      const NgramCounts rc = count_ngrams(ref);
      for (int n = 0; n < kMaxN; ++n)
        for (const auto& [gram, c] : rc[n]) max_ref[n][gram] = std::max(max_ref[n][gram], c);
      const auto dist = [&](size_t len) { return std::labs(long(len) - long(cand.size())); };
      if (dist(ref.size()) < dist(closest) || (dist(ref.size()) == dist(closest) && ref.size() < closest))
        closest = ref.size();
    }
    for (int n = 0; n < kMaxN; ++n) {
      for (const auto& [gram, c] : counts[n]) {
        auto it = max_ref[n].find(gram);
        if (it != max_ref[n].end()) matches[n] += std::min(c, it->second);
      }
      totals[n] += double(std::max<long>(0, long(cand.size()) - n));
    }
    cand_len += double(cand.size());
    ref_len += double(closest);
  }
  const double brevity = cand_len >= ref_len ? 1.0 : cand_len == 0 ? 0.0 : std::exp(1 - ref_len / cand_len);
  std::array<double, kMaxN> bleu{};
  double log_sum = 0;
  bool zero = false;
  for (int n = 0; n < kMaxN; ++n) {
    zero = zero || matches[n] == 0;
    if (!zero) log_sum += std::log(matches[n] / totals[n]);
    bleu[n] = zero ? 0.0 : brevity * std::exp(log_sum / (n + 1));
  }
  return bleu;
}

double rouge_l(const Tokens& candidate, const std::vector<Tokens>& references) {
  constexpr double kBeta2 = 1.2 * 1.2;
  if (candidate.empty()) return 0;
  double precision = 0, recall = 0;
  for (const Tokens& ref : references) {
    const double lcs = double(lcs_length(candidate, ref));
    precision = std::max(precision, lcs / double(candidate.size()));
    if (!ref.empty()) recall = std::max(recall, lcs / double(ref.size()));
  }
  if (precision == 0 || recall == 0) return 0;
  return (1 + kBeta2) * precision * recall / (recall + kBeta2 * precision);
}

std::vector<double> cider_d(const std::vector<Tokens>& candidates,
                            const std::vector<std::vector<Tokens>>& references) {
  check_sizes(candidates, references);
  // Document frequency: in how many images' reference sets each n-gram occurs.
  std::unordered_map<std::string, int> df;
  for (const auto& refs : references) {
    std::unordered_map<std::string, bool> seen;
    for (const Tokens& ref : refs)
      for (const auto& per_n : count_ngrams(ref))
        for (const auto& entry : per_n) seen[entry.first] = true;
    for (const auto& entry : seen) ++df[entry.first];
  }
  const double log_images = std::log(double(candidates.size()));
  std::vector<double> scores(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    const TfIdf cand = tf_idf(candidates[i], log_images, df);
    double sum = 0;
    for (const Tokens& ref : references[i]) sum += cider_similarity(cand, tf_idf(ref, log_images, df));
    scores[i] = 10.0 * sum / kMaxN / double(references[i].size());
  }
  return scores;
}

CaptionScores score_captions(const std::vector<Tokens>& candidates,
                             const std::vector<std::vector<Tokens>>& references) {
  check_sizes(candidates, references);
  if (candidates.empty()) throw std::invalid_argument("caption metrics: no captions to score");
  CaptionScores s{};
  s.bleu = corpus_bleu(candidates, references);
  for (size_t i = 0; i < candidates.size(); ++i) s.rouge_l += rouge_l(candidates[i], references[i]);
  s.rouge_l /= double(candidates.size());
  for (double c : cider_d(candidates, references)) s.cider_d += c;
  s.cider_d /= double(candidates.size());
  return s;
}

}  // namespace caption
