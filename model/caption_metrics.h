#pragma once
// Caption quality metrics as coco-caption computes them (BLEU-1..4, ROUGE-L, CIDEr-D), over
// already tokenised captions: candidates[i] is the caption produced for image i and
// references[i] that image's reference captions. Tokens must not contain spaces (n-grams are
// keyed by their words joined with spaces); clean_caption() output qualifies.
#include <array>
#include <string>
#include <vector>

namespace caption {

using Tokens = std::vector<std::string>;

// Corpus BLEU-1..4 (entry n-1 is BLEU-n): clipped n-gram matches and candidate n-gram counts
// summed over the corpus, geometric mean of the precisions with equal weights, times the
// brevity penalty exp(1 - r/c) when c < r, where c is the total candidate length and r the sum
// over images of the reference length closest to the candidate's (ties: the shorter). A
// precision with no matches makes that BLEU-n (and the higher ones) 0: no smoothing.
std::array<double, 4> corpus_bleu(const std::vector<Tokens>& candidates,
                                  const std::vector<std::vector<Tokens>>& references);

// ROUGE-L of one candidate: with P and R the largest LCS precision and the largest LCS recall
// over the references (each maximised on its own, as coco-caption does),
// (1 + beta^2) P R / (R + beta^2 P), beta = 1.2; 0 for an empty candidate or no overlap.
double rouge_l(const Tokens& candidate, const std::vector<Tokens>& references);

// CIDEr-D of each candidate: TF-IDF vectors of its 1..4-grams, idf = log(images) -
// log(max(1, df)) with df the number of images whose reference set holds the n-gram; per n, the
// candidate weights clipped by the reference's (min) dotted with the reference vector, over the
// product of the unclipped norms, times exp(-(len_c - len_r)^2 / (2 * 6^2)); averaged over n
// and over the references, times 10. The document frequencies come from all images given.
std::vector<double> cider_d(const std::vector<Tokens>& candidates,
                            const std::vector<std::vector<Tokens>>& references);

struct CaptionScores {
  std::array<double, 4> bleu;  // BLEU-1..4
  double rouge_l;              // mean over images
  double cider_d;              // mean over images
};

// All metrics; candidates and references must have the same, non-zero size and every image at
// least one reference (std::invalid_argument otherwise).
CaptionScores score_captions(const std::vector<Tokens>& candidates,
                             const std::vector<std::vector<Tokens>>& references);

}  // namespace caption
