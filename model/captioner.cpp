#include "model/captioner.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "kernels/beam_topk.h"

namespace caption {
namespace {

struct Hypothesis {
  std::vector<int32_t> words;
  double logp = 0;  // sum of log-probabilities, <end> included when finished
};

double normalized(const Hypothesis& h, float alpha) {
  return alpha == 0.f ? h.logp : h.logp / std::pow(double(h.words.size() + 1), double(alpha));
}

// Decodes images [first, first+n) of `features` with K rows per image.
void decode_group(Decoder& dec, const float* features, int n, const DecodeOptions& opt,
                  std::vector<std::vector<int32_t>>& out) {
  const int K = opt.beam, D = dec.dims().feature_dim, rows = n * K;
  std::vector<float> feats(size_t(rows) * D);
  for (int r = 0; r < rows; ++r) std::copy(features + size_t(r / K) * D, features + size_t(r / K + 1) * D,
                                           feats.begin() + size_t(r) * D);
  auto state = dec.begin_inference(feats.data(), rows);
  const double kDead = -std::numeric_limits<double>::infinity();
  std::vector<Hypothesis> alive(rows);
  for (int r = 0; r < rows; ++r) alive[r].logp = r % K == 0 ? 0.0 : kDead;  // one live beam to start
  std::vector<std::vector<Hypothesis>> finished(n);
  std::vector<char> done(n, 0);
  std::vector<int32_t> tokens(rows, Vocabulary::kStart), parent(rows);
  // Each row's best 2K tokens (picked on the device) hold every candidate that can make an
  // image's best 2K: a row's scores are its beam's logp plus the row's log-probabilities, so
  // they rank within the row as the log-probabilities do (ties too: lower token first).
  const int C = 2 * K;
  const int32_t banned = opt.allow_unk ? -1 : Vocabulary::kUnk;
  std::vector<int32_t> top_tok;
  std::vector<float> top_lp;
  struct Cand {
    double score;
    int row;
    int32_t token;
  };
  std::vector<Cand> cands;
  // The rows take their parents' state at the start of the next step (no move before the first).
  for (int t = 0; t < opt.max_len - 1 && std::count(done.begin(), done.end(), 0) > 0; ++t) {
    dec.search_step(state, t > 0 && K > 1 ? parent.data() : nullptr, tokens.data(), C, Vocabulary::kEnd, banned,
                    top_tok, top_lp);
    std::vector<Hypothesis> next(rows);
    for (int img = 0; img < n; ++img) {
      for (int k = 0; k < K; ++k) parent[img * K + k] = img * K + k, next[img * K + k].logp = kDead;
      if (done[img]) continue;
      cands.clear();
      for (int k = 0; k < K; ++k) {
        int r = img * K + k;
        if (alive[r].logp == kDead) continue;
        for (int c = 0; c < C && top_tok[size_t(r) * C + c] >= 0; ++c)  // -1: fewer allowed tokens than C
          cands.push_back({alive[r].logp + top_lp[size_t(r) * C + c], r, top_tok[size_t(r) * C + c]});
      }
      // The best 2K candidates hold K that do not end, whatever ends among them. Ties: lower
      // token, then lower row, a total order so that the result does not depend on the
      // order the candidates were gathered in.
      size_t keep = std::min(cands.size(), size_t(C));
      std::partial_sort(cands.begin(), cands.begin() + keep, cands.end(), [](const Cand& a, const Cand& b) {
        if (a.score != b.score) return a.score > b.score;
        return a.token != b.token ? a.token < b.token : a.row < b.row;
      });
      int filled = 0;
      for (size_t c = 0; c < keep && filled < K; ++c) {
        Hypothesis h{alive[cands[c].row].words, cands[c].score};
        if (cands[c].token == Vocabulary::kEnd) {
          finished[img].push_back(std::move(h));
          continue;
        }
        h.words.push_back(cands[c].token);
        int r = img * K + filled++;
        parent[r] = cands[c].row;
        tokens[r] = cands[c].token;
        next[r] = std::move(h);
      }
      // Done once K captions have finished and no live beam can still beat the worst of
      // them: log-probabilities only fall as words are added (exact for length_penalty 0,
      // the usual heuristic otherwise).
      auto& fin = finished[img];
      std::sort(fin.begin(), fin.end(), [&](const Hypothesis& a, const Hypothesis& b) {
        return normalized(a, opt.length_penalty) > normalized(b, opt.length_penalty);
      });
      if (int(fin.size()) > K) fin.resize(K);
      double best_alive = kDead;
      for (int k = 0; k < K; ++k)
        if (next[img * K + k].logp != kDead) best_alive = std::max(best_alive, normalized(next[img * K + k], opt.length_penalty));
      if (int(fin.size()) >= K && best_alive <= normalized(fin.back(), opt.length_penalty)) done[img] = 1;
      if (best_alive == kDead) done[img] = 1;
    }
    alive.swap(next);
  }
  for (int img = 0; img < n; ++img) {
    auto& pool = finished[img];
    if (!done[img])  // out of steps: live beams compete as they are
      for (int k = 0; k < K; ++k)
        if (alive[img * K + k].logp != kDead) pool.push_back(alive[img * K + k]);
    auto best = std::max_element(pool.begin(), pool.end(), [&](const Hypothesis& a, const Hypothesis& b) {
      return normalized(a, opt.length_penalty) < normalized(b, opt.length_penalty);
    });
    out.push_back(best == pool.end() ? std::vector<int32_t>{} : best->words);
  }
}

}  // namespace

std::vector<std::vector<int32_t>> generate(Decoder& decoder, const float* features, int count,
                                           const DecodeOptions& opt) {
  if (opt.beam < 1 || opt.beam > kBeamTopkMaxK / 2)
    throw std::invalid_argument("beam width must be in [1, " + std::to_string(kBeamTopkMaxK / 2) + "]");
  std::vector<std::vector<int32_t>> out;
  out.reserve(count);
  const int D = decoder.dims().feature_dim;
  for (int first = 0; first < count; first += opt.batch)
    decode_group(decoder, features + size_t(first) * D, std::min(opt.batch, count - first), opt, out);
  return out;
}

std::string caption_text(const Vocabulary& vocab, const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += (s.empty() ? "" : " ") + vocab.word(id);
  return s;
}

}  // namespace caption
